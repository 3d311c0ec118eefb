package peertest

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/lightsout/lightsout/internal/poll"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PeersDir is the directory of the third-party Redfish peers and their
// start scripts: $LIGHTSOUT_PEERS_DIR, else ../shared/peers next to the
// repository's root. It skips the test (fails it under
// LIGHTSOUT_REQUIRE_PEERS=1) when the directory or the Debian packages the
// peers need are missing (its install-deps --check).
func PeersDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LIGHTSOUT_PEERS_DIR")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			Missing(t, "LIGHTSOUT_PEERS_DIR not set and no repository root found: "+err.Error())
		}
		dir = filepath.Join(root, "..", "shared", "peers")
	}
	if _, err := os.Stat(filepath.Join(dir, "start-sushy")); err != nil {
		Missing(t, fmt.Sprintf("Redfish peers not found in %s (set LIGHTSOUT_PEERS_DIR)", dir))
	}
	if out, err := exec.Command(filepath.Join(dir, "install-deps"), "--check").CombinedOutput(); err != nil {
		Missing(t, fmt.Sprintf("Redfish peers' Debian packages missing (run %s as root): %s",
			filepath.Join(dir, "install-deps"), strings.TrimSpace(string(out))))
	}
	return dir
}

// repoRoot is the nearest directory above the working directory holding
// go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for i := 0; i < 64; i++ {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			break
		}
		dir = up
	}
	return "", errors.New("no go.mod above the working directory")
}

// RedfishPeer is a running third-party Redfish service on loopback.
type RedfishPeer struct {
	Kind string // sushy, mockup
	URL  string
	Addr netip.AddrPort
	PID  int
	Dir  string // its working directory (certificate, log)
	Cert string // the PEM certificate it presents
	// Systems and UUIDs, in pairs, as the start script printed them.
	Systems []string
	UUIDs   []string

	t    testing.TB
	args []string // the start script and its arguments but --port/--dir
}

// SushyOptions configure StartSushy.
type SushyOptions struct {
	// User and Password turn on HTTP Basic auth with one account (the
	// password goes through a file, never a command line).
	User, Password string
	// UUIDs of the fake systems (default: the script's one system).
	UUIDs []string
}

// StartSushy starts OpenStack's sushy-tools emulator (fake driver, HTTPS
// with a throwaway certificate) on a free loopback port and stops it by PID
// when the test ends.
func StartSushy(t testing.TB, o SushyOptions) *RedfishPeer {
	t.Helper()
	dir := PeersDir(t)
	args := []string{filepath.Join(dir, "start-sushy"), "--lifetime", "600"}
	if o.User != "" {
		pw := filepath.Join(t.TempDir(), "sushy.password")
		if err := os.WriteFile(pw, []byte(o.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--user", o.User, "--password-file", pw)
	}
	for _, u := range o.UUIDs {
		args = append(args, "--uuid", u)
	}
	p := &RedfishPeer{Kind: "sushy", t: t, args: args}
	p.start(0)
	return p
}

// StartMockup starts DMTF's Redfish-Mockup-Server serving public-rackmount1
// over HTTPS on a free loopback port and stops it by PID when the test
// ends. It checks no credentials.
func StartMockup(t testing.TB) *RedfishPeer {
	t.Helper()
	dir := PeersDir(t)
	p := &RedfishPeer{Kind: "mockup", t: t, args: []string{filepath.Join(dir, "start-mockup"), "--lifetime", "600"}}
	p.start(0)
	return p
}

// start runs the start script on port (0: a free one, retried on another
// port if the service does not come up) with a fresh directory.
func (p *RedfishPeer) start(port int) {
	t := p.t
	t.Helper()
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		pt := port
		if pt == 0 {
			pt = freeTCPPort(t)
		}
		dir := t.TempDir()
		cmd := exec.Command(p.args[0], append(append([]string{}, p.args[1:]...), "--port", strconv.Itoa(pt), "--dir", dir)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			lastErr = fmt.Sprintf("%v: %s", err, strings.TrimSpace(stderr.String()))
			continue
		}
		p.Systems, p.UUIDs = nil, nil
		for _, l := range strings.Split(string(out), "\n") {
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				continue
			}
			switch k {
			case "pid":
				p.PID, _ = strconv.Atoi(v)
			case "url":
				p.URL = v
			case "dir":
				p.Dir = v
			case "cert":
				p.Cert = v
			case "system":
				p.Systems = append(p.Systems, v)
			case "uuid":
				p.UUIDs = append(p.UUIDs, v)
			}
		}
		p.Addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(pt))
		if p.PID <= 0 {
			t.Fatalf("%s: no pid= in its output:\n%s", p.args[0], out)
		}
		pid := p.PID
		t.Cleanup(func() { stopPID(pid) })
		return
	}
	if port != 0 {
		t.Fatalf("%s on port %d did not start: %s", filepath.Base(p.args[0]), port, lastErr)
	}
	t.Fatalf("%s did not start: %s", filepath.Base(p.args[0]), lastErr)
}

// Stop stops the service (SIGTERM, then SIGKILL) and waits until it is gone.
func (p *RedfishPeer) Stop() {
	stopPID(p.PID)
}

// Restart stops the service and starts it again on the same port with a
// new working directory: a new throwaway certificate, as after a BMC's
// replacement or a certificate regeneration.
func (p *RedfishPeer) Restart() {
	p.t.Helper()
	p.Stop()
	p.start(int(p.Addr.Port()))
}

// stopPID ends a process we started: SIGTERM, up to 3 s for it to go, then
// SIGKILL. The peer was started by a script that exited, so the process is
// not our child: it is polled with signal 0.
func stopPID(pid int) {
	if pid <= 0 || syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	gone := func() bool { return syscall.Kill(pid, 0) != nil }
	if poll.Wait(3*time.Second, gone) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	poll.Wait(2*time.Second, gone)
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ValidatorResult is what DMTF's Redfish Protocol Validator reported.
type ValidatorResult struct {
	Pass, Fail, NotTested, Warn int
	// Failures are its "FAIL ASSERTION METHOD STATUS URI" lines.
	Failures  []string
	ReportDir string
	Output    string
}

// RunProtocolValidator runs DMTF's Redfish Protocol Validator against url
// as user (admin rights needed; the password goes through a file) and
// writes its reports into reportDir.
func RunProtocolValidator(t testing.TB, url, user, password, reportDir string) ValidatorResult {
	t.Helper()
	dir := PeersDir(t)
	pw := filepath.Join(t.TempDir(), "validator.password")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "run-protocol-validator"), "--url", url, "--user", user,
		"--password-file", pw, "--report-dir", reportDir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("run-protocol-validator: %v\n%s", err, out)
	}
	r := ValidatorResult{ReportDir: reportDir, Output: string(out)}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "FAIL "):
			r.Failures = append(r.Failures, l)
		case strings.HasPrefix(l, "PASS="):
			for _, f := range strings.Fields(l) {
				k, v, _ := strings.Cut(f, "=")
				n, _ := strconv.Atoi(v)
				switch k {
				case "PASS":
					r.Pass = n
				case "FAIL":
					r.Fail = n
				case "NOT_TESTED":
					r.NotTested = n
				case "WARN":
					r.Warn = n
				}
			}
		}
	}
	return r
}
