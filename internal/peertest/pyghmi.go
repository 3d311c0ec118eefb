package peertest

import (
	"bufio"
	_ "embed"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

//go:embed testdata/pyghmi_bmc.py
var pyghmiBMC []byte

// Python is the interpreter that sees Debian's Python modules (a pyenv
// python3 on PATH does not).
const Python = "/usr/bin/python3"

// Pyghmi is a running pyghmi BMC (pyghmi.ipmi.bmc.Bmc with its default
// settings, the IPMI server inside OpenStack virtualbmc): cipher suite 3
// only, whatever is proposed; no RMCP presence pong; no Get System GUID.
type Pyghmi struct {
	Addr    netip.AddrPort
	Process *os.Process
	state   string
}

// Power reads the BMC's power state ("on" or "off") as the Python side
// last wrote it.
func (p Pyghmi) Power() (string, error) {
	b, err := os.ReadFile(p.state)
	return strings.TrimSpace(string(b)), err
}

// StartPyghmi runs testdata/pyghmi_bmc.py under /usr/bin/python3 on a
// loopback port the kernel chooses, with one user (the password goes
// through a 0600 file, never the command line) and System GUID guid
// (RFC 4122 text). It stops the process by PID when the test ends
// (continuing it first, in case the test stopped it). A missing
// python3-pyghmi skips the test (fails it under
// LIGHTSOUT_REQUIRE_PEERS=1).
func StartPyghmi(t testing.TB, user, password, guid string) Pyghmi {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		Missing(t, Python+" not installed (Debian: python3)")
	}
	if out, err := exec.Command(Python, "-c", "import pyghmi.ipmi.bmc").CombinedOutput(); err != nil {
		Missing(t, fmt.Sprintf("pyghmi not importable by %s (Debian: python3-pyghmi): %s", Python, firstLine(string(out))))
	}
	dir := t.TempDir()
	script, pw, state := filepath.Join(dir, "pyghmi_bmc.py"), filepath.Join(dir, "password"), filepath.Join(dir, "power")
	if err := os.WriteFile(script, pyghmiBMC, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python, script, user, pw, guid, state)
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			ready <- sc.Text()
		}
		close(ready)
		for sc.Scan() { // keep the pipe drained
		}
	}()
	select {
	case line, ok := <-ready:
		var port uint16
		if _, err := fmt.Sscanf(line, "ready %d", &port); !ok || err != nil || port == 0 {
			t.Fatalf("pyghmi BMC did not start (%q): %s", line, stderr.String())
		}
		return Pyghmi{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port), Process: cmd.Process, state: state}
	case <-time.After(10 * time.Second):
		t.Fatalf("pyghmi BMC did not report ready within 10s: %s", stderr.String())
	}
	return Pyghmi{}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
