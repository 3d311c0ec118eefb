package diag

import (
	"net"
	"testing"
)

// TestPortOf: portOf splits as net.SplitHostPort does (diag does not
// import net), "443" where that refuses.
func TestPortOf(t *testing.T) {
	for _, addr := range []string{"10.0.4.17:623", "bmc.example:443", "[::1]:8443", "[fe80::1%eth0]:623", "host:", "host",
		"::1", "[::1]", "a:b:443", "[a]b:443", "[a:443", "a]:443", "[[a]]:443", "a:[443]", ":443", ""} {
		want := "443"
		if _, p, err := net.SplitHostPort(addr); err == nil {
			want = p
		}
		if got := portOf(addr); got != want {
			t.Errorf("portOf(%q) = %q, want %q", addr, got, want)
		}
	}
}
