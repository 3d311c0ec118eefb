package power

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/peertest"
)

// Power through OpenIPMI's ipmi_sim, a BMC nobody here wrote that enforces
// command privileges: its RMCP+ sessions start at User, where Chassis
// Control is refused 0xD4, so power must raise the session first (as
// ipmitool and FreeIPMI do after every login). ipmi_sim's power is what
// its chassis_control program says: a shell script keeping it in a file.
func TestPowerOpenIPMISim(t *testing.T) {
	const pass = "power-pw-1"
	dir := t.TempDir()
	script := filepath.Join(dir, "chassis-control")
	// ipmi_sim runs it as "get power" (expects "power:0|1") or "set power N".
	if err := os.WriteFile(script, []byte(`#!/bin/sh
f="$(dirname "$0")/power"
case "$1" in
get) shift; for n in "$@"; do [ "$n" = power ] && echo "power:$(cat "$f" 2>/dev/null || echo 0)"; done;;
set) shift; while [ $# -gt 1 ]; do [ "$1" = power ] && echo "$2" > "$f"; shift 2; done;;
esac
`), 0o700); err != nil {
		t.Fatal(err)
	}
	lan := `    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "` + script + `"
  user 2 true "admin" "` + pass + `" admin 10 md5
`
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	eng, err := ipmi.New(ipmi.Config{InitialRTO: 100 * time.Millisecond, MaxRTO: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	sim := peertest.StartIPMISim(t, "lightsout-power", lan, emu, func(a netip.AddrPort) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := eng.Ping(ctx, a)
		return err == nil
	})
	ch := IPMI{Engine: eng, Addr: sim.Addr, Creds: ipmi.Credentials{User: "admin", Password: []byte(pass)}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := func() string {
		t.Helper()
		p, err := ch.PowerState(ctx)
		if err != nil {
			t.Fatalf("power status: %v", err)
		}
		return p
	}
	if p := read(); p != "off" {
		t.Fatalf("power before: %q, want off", p)
	}
	if err := ch.SetPower(ctx, On); err != nil {
		t.Fatalf("power on: %v", err)
	}
	if p := read(); p != "on" {
		t.Errorf("power after on: %q", p)
	}
	if err := ch.SetPower(ctx, Off); err != nil {
		t.Fatalf("power off: %v", err)
	}
	if p := read(); p != "off" {
		t.Errorf("power after off: %q", p)
	}
	// Identify needs Operator too.
	if err := ch.Identify(ctx, true); err != nil {
		t.Errorf("identify on: %v", err)
	}
	// ipmi_sim's Get Chassis Status: the lamp's state, or a clear "does
	// not report it" — never a wrong state.
	id, err := ch.IdentifyState(ctx)
	t.Logf("ipmi_sim identify state: %q %v", id, err)
	if err != nil && !errors.Is(err, ErrUnsupported) || err == nil && id != "on" && id != "timed" {
		t.Errorf("identify state after identify on: %q %v", id, err)
	}
}
