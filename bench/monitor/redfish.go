package main

import (
	"fmt"
	"strings"

	"github.com/lightsout/lightsout/bench/internal/markdown"
	"github.com/lightsout/lightsout/internal/probe"
)

// maxIdleRedfishConns is the server's bound on idle Redfish connections
// (the report names it; the server lowers it to half its RLIMIT_NOFILE).
const maxIdleRedfishConns = probe.MaxIdleRedfishConns

// legResult is what one leg (the fleet checked over one protocol)
// measured, for the comparison.
type legResult struct {
	proto        string
	cpuShare     float64 // server CPU over the window, share of one core
	checks       float64 // in the window (lightsout_checks_total)
	fds          int     // server file descriptors at the end
	kibPerChan   float64 // RSS growth per channel, store included
	goKiBPerChan float64 // growth of the Go runtime's memory per channel
	goOK         bool
	ok           bool // every target of the leg met
}

// cpuPerCheck is the server's CPU per check in µs (0 without checks).
func (r legResult) cpuPerCheck(window float64) float64 {
	if r.checks == 0 {
		return 0
	}
	return r.cpuShare * window / r.checks * 1e6
}

func legName(proto string) string {
	if proto == "redfish" {
		return "Redfish (HTTPS; every BMC checked over Redfish)"
	}
	return "IPMI (the same fleet, every BMC checked over RMCP+)"
}

// compareLegs reports Redfish against IPMI: the same fleet, the same
// server settings, one leg after the other.
func (b *bench) compareLegs(rf, ip legResult) {
	w := b.cfg.window.Seconds()
	ratio := func(a, c float64) string {
		if c == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", a/c)
	}
	rfCPU, ipCPU := rf.cpuPerCheck(w), ip.cpuPerCheck(w)
	res := "PASS"
	if rfCPU == 0 || ipCPU == 0 || rfCPU > targetRedfishRatio*ipCPU {
		res = "**FAIL**"
		b.failed = true
	}
	rows := [][]string{
		{"server CPU per check, µs (window CPU ÷ checks)", fmt.Sprintf("%.0f", rfCPU), fmt.Sprintf("%.0f", ipCPU), "**" + ratio(rfCPU, ipCPU) + "**", fmt.Sprintf("≤ %.0f×", targetRedfishRatio), res},
		{"server CPU, share of one core", fmt.Sprintf("%.1f%%", rf.cpuShare*100), fmt.Sprintf("%.1f%%", ip.cpuShare*100), ratio(rf.cpuShare, ip.cpuShare), "", ""},
		{"checks per second", fmt.Sprintf("%.0f", rf.checks/w), fmt.Sprintf("%.0f", ip.checks/w), ratio(rf.checks, ip.checks), "", ""},
		{"server file descriptors per BMC", fmt.Sprintf("%.3f", float64(rf.fds)/float64(b.cfg.count)), fmt.Sprintf("%.3f", float64(ip.fds)/float64(b.cfg.count)), ratio(float64(rf.fds), float64(ip.fds)), "", ""},
		{"RSS per BMC over an empty server, KiB (store included)", fmt.Sprintf("%.2f", rf.kibPerChan), fmt.Sprintf("%.2f", ip.kibPerChan), ratio(rf.kibPerChan, ip.kibPerChan), "", ""},
	}
	if rf.goOK && ip.goOK {
		rows = append(rows, []string{"Go runtime memory per BMC, KiB", fmt.Sprintf("%.2f", rf.goKiBPerChan), fmt.Sprintf("%.2f", ip.goKiBPerChan), ratio(rf.goKiBPerChan, ip.goKiBPerChan), "", ""})
	}
	b.emit("\n# Redfish against IPMI\n\nThe same %d simulated BMCs and the same server settings, measured one leg after the other (each on a fresh data directory); ratio = Redfish ÷ IPMI.\n\n", b.cfg.count)
	b.emit("%s", markdown.Table([]string{"figure", "Redfish", "IPMI", "ratio", "target", "result"}, rows, []bool{false, true, true, true, false, false}))
	b.emit("\n    %-4s  Redfish CPU per check ÷ IPMI's: %s (target ≤ %.0f×)\n", strings.ReplaceAll(res, "*", ""), ratio(rfCPU, ipCPU), targetRedfishRatio)
}
