// Package peertest lets tests depend on third-party peer programs
// (ipmi_sim, ipmitool, ipmipower, ...): a missing peer skips the test with a
// one-line reason, or fails it when LIGHTSOUT_REQUIRE_PEERS=1 (as CI sets).
package peertest

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether missing peers must fail tests.
func Required() bool { return os.Getenv("LIGHTSOUT_REQUIRE_PEERS") == "1" }

// Need returns the path of each named program, or skips (fails when peers
// are required) naming the first one missing.
func Need(t testing.TB, programs ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(programs))
	for _, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			Missing(t, p+" not installed (Debian: "+debianPackage(p)+")")
		}
		paths = append(paths, path)
	}
	return paths
}

// Missing skips the test with reason, or fails it when peers are required.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("peer required (LIGHTSOUT_REQUIRE_PEERS=1): %s", reason)
	}
	t.Skip("skipping: " + reason)
}

// NeedRoot skips (or fails) unless the test runs as root, which binding the
// IPMI port 623 on loopback addresses needs.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root to bind port 623 on 127.x addresses")
	}
}

func debianPackage(p string) string {
	switch p {
	case "ipmi_sim":
		return "openipmi"
	case "ipmipower", "bmc-info", "ipmi-sel", "ipmi-sensors":
		return "freeipmi-tools"
	case "psql", "pg_ctl", "postgres", "initdb":
		return "postgresql"
	case "promtool":
		return "prometheus"
	default:
		return p
	}
}
