package main

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/server"
)

// clusterFlags are the server's scale-out flags (docs/scale-out.md).
type clusterFlags struct {
	name    string
	zones   []string
	peer    string
	lease   time.Duration
	source  []string
	keyFile string
	rules   []string
}

func (f *clusterFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.name, "name", "", "this instance's name among those sharing the database (default: the host name and 4 hex digits of --data)")
	fl.StringSliceVar(&f.zones, "zone", nil, "zone this instance serves: it checks only machines of its zones (repeatable; default: the zone 'default', of machines that name none)")
	fl.StringVar(&f.peer, "peer-address", "", "HOST:PORT the other instances reach this one's API on (default: the --listen address)")
	fl.DurationVar(&f.lease, "lease", cluster.DefaultLease, "membership lease: an instance not heard of this long is dead and its channels are taken over")
	fl.StringArrayVar(&f.source, "source-address", nil, "local address BMC traffic (IPMI) leaves from, on a multi-homed management server; ZONE=ADDR: for the BMCs of that zone's --zone-rule subnets (repeatable)")
	fl.StringArrayVar(&f.rules, "zone-rule", nil, "CIDR=ZONE: a machine imported or added without a zone whose BMC address is in CIDR goes to ZONE (repeatable; the longest prefix wins); give every instance the same rules")
	fl.StringVar(&f.keyFile, "key-file", "", "the key that seals BMC passwords (default DATA/secret.key); every instance sharing a database needs the same one")
}

// apply validates the flags into cfg (its Timeout set); listen is the
// API's address.
func (f *clusterFlags) apply(cfg *server.Config, listen string) error {
	cfg.KeyFile = f.keyFile
	if f.name != "" && strings.ContainsAny(f.name, ", \t") {
		return usageErr("--name %q: no commas or spaces", f.name)
	}
	for _, z := range f.zones {
		if z == "" || strings.ContainsAny(z, ", \t") {
			return usageErr("--zone %q: a zone name is not empty and has no commas or spaces", z)
		}
	}
	if f.lease < 3*time.Second || f.lease > 10*time.Minute {
		return usageErr("--lease %v: from 3s to 10m", f.lease)
	}
	if err := cluster.CheckLease(f.lease, server.MaxCheckTimeouts*cfg.Timeout); err != nil {
		return usageErr("--lease %v is too short for --timeout %v (a check may last %d × --timeout): %v", f.lease, cfg.Timeout, server.MaxCheckTimeouts, err)
	}
	peer := f.peer
	if peer == "" {
		peer = listen
	}
	if _, _, err := net.SplitHostPort(peer); err != nil {
		return usageErr("--peer-address %q: HOST:PORT", peer)
	}
	rules, err := cluster.ParseZoneRules(f.rules)
	if err != nil {
		return usageErr("--zone-rule: %v", err)
	}
	zoneSrc := map[string]netip.Addr{}
	for _, src := range f.source {
		zone, ip, err := cluster.ParseZoneSource(src)
		if err != nil {
			return usageErr("--source-address: %v", err)
		}
		if zone == "" {
			cfg.Engine.Source = ip
		} else {
			zoneSrc[zone] = ip
		}
	}
	if cfg.Engine.Routes, err = cluster.SourceRoutes(rules, zoneSrc); err != nil {
		return usageErr("--source-address: %v", err)
	}
	cfg.Cluster = cluster.Config{Name: f.name, Zones: f.zones, PeerAddress: peer, Lease: f.lease, ZoneRules: rules}
	return nil
}
