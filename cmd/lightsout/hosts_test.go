package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/sim/simtest"
	"github.com/lightsout/lightsout/internal/store"
)

// hostRange is the simulated fleet's BMCs a..b as a FreeIPMI host list:
// one loopback address each (as root), or consecutive ports.
func hostRange(cfg sim.Config, a, b int) string {
	if cfg.BasePort == 0 {
		base := strings.TrimSuffix(cfg.BaseAddr, ".1")
		return fmt.Sprintf("%s.[%d-%d]", base, a, b)
	}
	return fmt.Sprintf("%s:[%d-%d]", cfg.BaseAddr, cfg.BasePort+a-1, cfg.BasePort+b-1)
}

// TestCheckHostList: check -H with a FreeIPMI host list, ipmitool's -U and
// -E (IPMI_PASSWORD) and -f; on a terminal only the failing rows, then a
// summary naming the first 20 failing BMCs and how many more; --all-rows
// shows every row; bad lists are refused with their position, nothing
// contacted.
func TestCheckHostList(t *testing.T) {
	cfg := sim.Config{Count: 25, Seed: 9, Password: "fleet-pass-123", Faults: map[string]sim.Faults{"bmc-00001": {WrongPassword: true}}}
	for i := 2; i <= 23; i++ {
		cfg.Faults[fmt.Sprintf("bmc-%05d", i)] = sim.Faults{Silent: true}
	}
	fleet := simtest.Start(t, cfg, 75)
	// The range simtest picked, for the host lists below.
	first := fleet.BMCs()[0].Addr()
	cfg.BaseAddr = first.Addr().String()
	if os.Geteuid() != 0 {
		cfg.BasePort = int(first.Port())
	}
	t.Setenv("LIGHTSOUT_PASSWORD", "")
	t.Setenv("IPMI_PASSWORD", "fleet-pass-123")
	all := hostRange(cfg, 1, 25)
	b24, _ := fleet.BMC("bmc-00024")
	healthy := b24.Addr().String()
	if cfg.BasePort == 0 {
		healthy = b24.Addr().Addr().String()
	}

	prev := rowsTerminal
	rowsTerminal = func(io.Writer) bool { return true }
	defer func() { rowsTerminal = prev }()
	out, code, err := runCLI(t, "check", "-H", all, "-U", "admin", "-E", "--timeout", "500ms")
	wantExit(t, "check -H range -E on a terminal", out, code, err, 1, "not Connectable (23): ", " and 3 more",
		"2 Connectable rows without conditions not shown (--all-rows shows every row)", "wrong_password", "25 BMCs")
	if strings.Contains(out, healthy+" ") {
		t.Errorf("a healthy BMC's row is shown on a terminal:\n%s", out)
	}
	if rows := strings.Count(out, "NotResponding "); rows != 22 {
		t.Errorf("%d NotResponding rows, want 22:\n%s", rows, out)
	}
	out, code, err = runCLI(t, "check", "-H", all, "-U", "admin", "-E", "--timeout", "500ms", "--all-rows")
	wantExit(t, "--all-rows", out, code, err, 1, healthy+" ")
	if strings.Contains(out, "not shown") {
		t.Errorf("--all-rows hides rows:\n%s", out)
	}

	// -f FILE, one BMC of the list form.
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("fleet-pass-123\n"), 0o600)
	out, code, err = runCLI(t, "check", "-H", hostRange(cfg, 24, 25), "-U", "admin", "-f", pw)
	wantExit(t, "-f", out, code, err, 0)

	// Bad input: exit 2, the position named.
	bad := strings.Replace(all, "-25]", "-x]", 1)
	out, code, err = runCLI(t, "check", "-H", bad, "-U", "admin", "-E")
	wantExit(t, "bad range", out, code, err, 2, "--host", "position", `'x' in a range`)
	t.Setenv("IPMI_PASSWORD", "")
	out, code, err = runCLI(t, "check", "-H", all, "-U", "admin", "-E")
	wantExit(t, "-E without IPMI_PASSWORD", out, code, err, 2, "IPMI_PASSWORD environment variable is not set")
	out, code, err = runCLI(t, "check", "-H", all, "-U", "admin", "--guid", "4c4c4544-0042-3510-8052-b4c04f4e3232", "-f", pw)
	wantExit(t, "--guid with a list", out, code, err, 2, "--guid name one BMC")
}

// TestNamesAsHostLists: machine names through the server take host lists
// too (power, check, diag, security), bad ones refused before any request.
func TestNamesAsHostLists(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	e := cliEnv(t)
	e.ImportFleet(t)
	out, code, err := as(t, e, store.RoleOperator, "check", "bmc-[00001-00003],bmc-00008")
	wantExit(t, "check a list", out, code, err, 0, "bmc-00001", "bmc-00002", "bmc-00003", "bmc-00008", "4 BMCs")
	out, code, err = as(t, e, store.RoleViewer, "power", "status", "bmc-0000[1-2]", "bmc-00001")
	wantExit(t, "power status a list", out, code, err, 0, "bmc-00001", "bmc-00002", "2 ok")
	for _, args := range [][]string{{"power", "status", "bmc-[2-1]"}, {"diag", "bmc-[1-"}, {"security", "bmc-[1-2]]"}, {"check", "a,,b"}} {
		out, code, err = as(t, e, store.RoleOperator, args...)
		wantExit(t, strings.Join(args, " "), out, code, err, 2, "machine names", "position")
	}
}
