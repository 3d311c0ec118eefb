// Package gobuild builds the binaries a benchmark runs (go build, from the
// module root into a scratch directory) and says which commit they were
// built from, for the report's header.
package gobuild

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/lightsout/lightsout/bench/internal/progress"
)

// Build builds each package (a path in the module, "./cmd/lightsout")
// into dir, named after the package's last element (DIR/lightsout), with
// `go build` run in the module root, its output on our stderr. It returns
// the module root and the binaries, in the order of pkgs.
func Build(dir string, pkgs ...string) (root string, bins []string, err error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", nil, fmt.Errorf("run it inside the lightsout module (go env GOMOD: %q, %v)", gomod, err)
	}
	root = filepath.Dir(gomod)
	for _, pkg := range pkgs {
		bin := filepath.Join(dir, path.Base(pkg))
		progress.Logf("go build -o %s %s", bin, pkg)
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return root, nil, fmt.Errorf("go build %s: %v", pkg, err)
		}
		bins = append(bins, bin)
	}
	return root, bins, nil
}

// Describe says what bin was built from: "commit 0123456789ab, built with
// go1.x", with " + uncommitted changes" when the tree had any, or
// "unknown". A binary built without VCS stamping (-buildvcs=false) names
// no commit; then git in root says, and with countTracked the changes are
// counted in tracked files only (" + uncommitted changes in N tracked
// files") instead of untracked files counting too.
func Describe(bin, root string, countTracked bool) string {
	v := "unknown"
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return v
	}
	var rev, mod string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			mod = s.Value
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v = "commit " + rev
		if mod == "true" {
			v += " + uncommitted changes"
		}
	} else if out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		v = "commit " + strings.TrimSpace(string(out))
		status := []string{"-C", root, "status", "--porcelain"}
		if countTracked {
			status = append(status, "--untracked-files=no")
		}
		if st, err := exec.Command("git", status...).Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			v += " + uncommitted changes"
			if countTracked {
				v += fmt.Sprintf(" in %d tracked files", len(strings.Split(strings.TrimSpace(string(st)), "\n")))
			}
		}
	}
	return v + ", built with " + bi.GoVersion
}
