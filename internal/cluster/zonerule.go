package cluster

import (
	"fmt"
	"net/netip"
	"strings"
)

// ZoneRule places the machines whose BMC address is in Prefix in Zone
// (`lightsout server --zone-rule 10.1.0.0/16=dc2`).
type ZoneRule struct {
	Prefix netip.Prefix
	Zone   string
}

// ZoneRules derive a machine's zone from its BMC subnet: the rule with the
// longest prefix holding the address wins. Pure.
type ZoneRules []ZoneRule

// ParseZoneRule reads CIDR=ZONE.
func ParseZoneRule(s string) (ZoneRule, error) {
	cidr, zone, ok := strings.Cut(s, "=")
	if !ok {
		return ZoneRule{}, fmt.Errorf("zone rule %q: want CIDR=ZONE, e.g. 10.1.0.0/16=dc2", s)
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return ZoneRule{}, fmt.Errorf("zone rule %q: %v", s, err)
	}
	zone = strings.TrimSpace(zone)
	if zone == "" || strings.ContainsAny(zone, ", \t\n=") {
		return ZoneRule{}, fmt.Errorf("zone rule %q: the zone must be a name without spaces, commas or '='", s)
	}
	return ZoneRule{Prefix: p.Masked(), Zone: zone}, nil
}

// ParseZoneRules reads every rule; the first bad one is the error.
func ParseZoneRules(ss []string) (ZoneRules, error) {
	var out ZoneRules
	for _, s := range ss {
		r, err := ParseZoneRule(s)
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.Prefix == r.Prefix && o.Zone != r.Zone {
				return nil, fmt.Errorf("zone rule %q: %v is already in zone %q", s, r.Prefix, o.Zone)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// ZoneFor is the zone of a BMC at address (an IP address; a host name or
// an address no rule holds gives ""): the longest matching prefix's.
func (rs ZoneRules) ZoneFor(address string) string {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	best, bits := "", -1
	for _, r := range rs {
		if r.Prefix.Contains(a) && r.Prefix.Bits() > bits {
			best, bits = r.Zone, r.Prefix.Bits()
		}
	}
	return best
}
