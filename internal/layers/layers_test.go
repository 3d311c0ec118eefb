package layers_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPureCores: the packages that hold vocabulary and pure decisions stay
// pure as packages: nothing they import, directly or not, does database,
// network or TLS I/O (`go list -deps`). diag's trees (its executor is
// diag/gather), the store's model (its SQL is store/sqlstore), a check's
// evidence and the IPMI vocabulary are among them.
func TestPureCores(t *testing.T) {
	pure := []string{"../evcode", "../state", "../agentstate", "../protocol",
		"../diag", "../store", "../evidence", "../ipmi/vocab"}
	forbidden := []string{"database/sql", "net", "net/http", "crypto/tls"}
	// and any package of these modules (the SQL drivers)
	forbiddenModules := []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list dependencies")
	}
	for _, p := range pure {
		out, err := exec.Command(goBin, "list", "-deps", p).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p, err)
		}
		deps := strings.Fields(string(out))
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f {
					t.Errorf("%s depends on %s", p, f)
				}
			}
			for _, m := range forbiddenModules {
				if d == m || strings.HasPrefix(d, m+"/") {
					t.Errorf("%s depends on %s", p, d)
				}
			}
		}
		if p == "../evcode" || p == "../agentstate" || p == "../protocol" {
			for _, d := range deps {
				if strings.HasPrefix(d, "github.com/lightsout/") && !strings.HasSuffix(d, p[2:]) {
					t.Errorf("%s is a leaf, yet imports %s", p, d)
				}
			}
		}
	}
}

// TestSurfacesAboveTheRoot: the API and the console take the server's
// parts (api.Config); neither imports the composition root
// (internal/server), so they do not sit on top of it in the graph.
func TestSurfacesAboveTheRoot(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list dependencies")
	}
	for _, p := range []string{"../api", "../web"} {
		out, err := exec.Command(goBin, "list", "-deps", p).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p, err)
		}
		for _, d := range strings.Fields(string(out)) {
			if d == "github.com/lightsout/lightsout/internal/server" {
				t.Errorf("%s imports internal/server", p)
			}
		}
	}
}

// maxFloors is the most packages a chain of imports may pass through, from
// cmd/lightsout down to a leaf (tests not counted). Lower it as floors come
// off (issue 16 asked for at most 8).
const maxFloors = 8

// TestImportDepth: the longest chain of lightsout imports (non-test) is at
// most maxFloors packages; the chain is logged.
func TestImportDepth(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list dependencies")
	}
	out, err := exec.Command(goBin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/lightsout/lightsout/"
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, i := range f[1:] {
			if strings.HasPrefix(i, mod) {
				imports[f[0]] = append(imports[f[0]], i)
			}
		}
		if _, ok := imports[f[0]]; !ok {
			imports[f[0]] = nil
		}
	}
	depth := map[string]int{}
	next := map[string]string{}
	var floors func(p string) int
	floors = func(p string) int {
		if d, ok := depth[p]; ok {
			return d
		}
		depth[p] = 1 // no cycles (the compiler refuses them); a guard all the same
		best := 0
		for _, i := range imports[p] {
			if d := floors(i); d > best {
				best, next[p] = d, i
			}
		}
		depth[p] = best + 1
		return depth[p]
	}
	top := ""
	for p := range imports {
		if top == "" || floors(p) > floors(top) || floors(p) == floors(top) && p < top {
			top = p
		}
	}
	var chain []string
	for p := top; p != ""; p = next[p] {
		chain = append(chain, strings.TrimPrefix(p, mod))
	}
	t.Logf("%d floors: %s", len(chain), strings.Join(chain, " -> "))
	if len(chain) > maxFloors {
		t.Errorf("the import graph is %d floors deep, at most %d allowed: %s", len(chain), maxFloors, strings.Join(chain, " -> "))
	}
}
