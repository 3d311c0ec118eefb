package cluster

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestZoneRules(t *testing.T) {
	rs, err := ParseZoneRules([]string{"10.0.0.0/8=dc1", "10.1.0.0/16=dc2", " 10.1.7.0/24 = dc2-row7", "fd00::/8=v6", "192.0.2.1/32=lab"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"10.9.9.9":         "dc1",
		"10.1.2.3":         "dc2",
		"10.1.7.200":       "dc2-row7", // the longest prefix wins
		"fd00::1":          "v6",
		"::ffff:10.1.2.3":  "dc2", // a v4-mapped address is its v4 one
		"192.0.2.1":        "lab",
		"192.0.2.2":        "",
		"bmc1.example.org": "", // no rule for a host name
		"":                 "",
		"11.0.0.1":         "",
	} {
		if got := rs.ZoneFor(addr); got != want {
			t.Errorf("ZoneFor(%q) = %q, want %q", addr, got, want)
		}
	}
	for in, frag := range map[string]string{
		"10.0.0.0/8":     "want CIDR=ZONE",
		"10.0.0.0/33=x":  "10.0.0.0/33",
		"10.0.0.0/8=":    "the zone must be a name",
		"10.0.0.0/8=a b": "the zone must be a name",
		"not-a-cidr=x":   "not-a-cidr",
	} {
		if _, err := ParseZoneRule(in); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("ParseZoneRule(%q) = %v, want an error with %q", in, err, frag)
		}
	}
	if _, err := ParseZoneRules([]string{"10.0.0.0/8=a", "10.0.0.0/8=b"}); err == nil || !strings.Contains(err.Error(), `already in zone "a"`) {
		t.Errorf("two zones for one prefix: %v", err)
	}
}

// TestSourceRoutes: per-zone source addresses become routes over the
// zones' rules; a zone with a source and no rule, a bad address or an
// IPv6 one are refused naming the cause.
func TestSourceRoutes(t *testing.T) {
	rs, err := ParseZoneRules([]string{"10.1.0.0/16=dc1", "10.2.0.0/16=dc2", "10.2.8.0/24=dc2", "10.3.0.0/16=dc3"})
	if err != nil {
		t.Fatal(err)
	}
	srcs := map[string]netip.Addr{}
	for _, s := range []string{"dc1=192.0.2.1", " dc2 = 192.0.2.2"} {
		z, a, err := ParseZoneSource(s)
		if err != nil {
			t.Fatal(err)
		}
		srcs[z] = a
	}
	if z, a, err := ParseZoneSource("192.0.2.9"); err != nil || z != "" || a != netip.MustParseAddr("192.0.2.9") {
		t.Errorf("the instance's own address: %q %v %v", z, a, err)
	}
	got, err := SourceRoutes(rs, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[{10.1.0.0/16 192.0.2.1} {10.2.0.0/16 192.0.2.2} {10.2.8.0/24 192.0.2.2}]" {
		t.Errorf("routes %v", got)
	}
	if _, err := SourceRoutes(rs, map[string]netip.Addr{"lab": netip.MustParseAddr("192.0.2.3")}); err == nil || !strings.Contains(err.Error(), "no --zone-rule CIDR=lab") {
		t.Errorf("a zone without rules: %v", err)
	}
	if _, err := SourceRoutes(rs, map[string]netip.Addr{"dc1": netip.MustParseAddr("2001:db8::1")}); err == nil || !strings.Contains(err.Error(), "IPv4 only") {
		t.Errorf("an IPv6 source: %v", err)
	}
	for in, frag := range map[string]string{"eth0": "not an IP address", "=192.0.2.1": "ZONE=ADDR", "dc1=eth0": "not an IP address"} {
		if _, _, err := ParseZoneSource(in); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("ParseZoneSource(%q) = %v, want %q", in, err, frag)
		}
	}
}
