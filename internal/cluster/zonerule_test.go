package cluster

import (
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
