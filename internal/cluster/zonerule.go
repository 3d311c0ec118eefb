package cluster

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lightsout/lightsout/internal/ipmi"
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

// ParseZoneSource reads one --source-address: ADDR (the instance's own)
// or ZONE=ADDR (the zone's), zone "" for the former.
func ParseZoneSource(s string) (zone string, addr netip.Addr, err error) {
	z, a, ok := strings.Cut(s, "=")
	if !ok {
		z, a = "", s
	}
	z, a = strings.TrimSpace(z), strings.TrimSpace(a)
	if ok && (z == "" || strings.ContainsAny(z, ", \t\n")) {
		return "", netip.Addr{}, fmt.Errorf("source address %q: want ADDR or ZONE=ADDR with a zone name", s)
	}
	if addr, err = netip.ParseAddr(a); err != nil {
		return "", netip.Addr{}, fmt.Errorf("source address %q: %q is not an IP address of this host", s, a)
	}
	return z, addr.Unmap(), nil
}

// SourceRoutes turns per-zone source addresses into routes by the zones'
// BMC subnets (the rules naming each zone): BMCs in those subnets are
// reached from the zone's address (ipmi.Config.Routes). A zone with a
// source address and no rule is an error: the engine knows BMCs by
// address, and a machine placed in a zone by name only is reached from
// the instance's own address. Pure.
func SourceRoutes(rules ZoneRules, sources map[string]netip.Addr) ([]ipmi.Route, error) {
	var out []ipmi.Route
	zones := make([]string, 0, len(sources))
	for z := range sources {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	for _, z := range zones {
		src := sources[z]
		if !src.Is4() {
			return nil, fmt.Errorf("zone %s: source address %v: IPv4 only", z, src)
		}
		n := 0
		for _, r := range rules {
			if r.Zone == z {
				if !r.Prefix.Addr().Is4() {
					return nil, fmt.Errorf("zone %s: rule %v: IPv4 only for a zone's source address", z, r.Prefix)
				}
				out = append(out, ipmi.Route{Prefix: r.Prefix, Source: src})
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("zone %s has a source address but no --zone-rule CIDR=%s: a zone's source address applies to its BMC subnets", z, z)
		}
	}
	return out, nil
}
