package power

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/lightsout/lightsout/internal/ipmi"
)

// IPMI is a Channel over an IPMI 2.0 session through the shared engine. Each
// call opens one session, runs its commands and closes it; the engine keeps
// it to one session and one request at a time per BMC, shared with the
// monitor.
type IPMI struct {
	Engine *ipmi.Engine
	Addr   netip.AddrPort
	Creds  ipmi.Credentials
}

var chassis = map[Action]ipmi.ChassisAction{
	On: ipmi.PowerOn, Off: ipmi.PowerOff, SoftOff: ipmi.SoftOff, Cycle: ipmi.PowerCycle, Reset: ipmi.HardReset,
}

func (c IPMI) with(ctx context.Context, f func(*ipmi.Session) error) (err error) {
	s, err := c.Engine.Open(ctx, c.Addr, c.Creds)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(context.WithoutCancel(ctx)); err == nil && cerr != nil {
			err = cerr
		}
	}()
	return f(s)
}

// SetPower runs Chassis Control.
func (c IPMI) SetPower(ctx context.Context, a Action) error {
	ca, ok := chassis[a]
	if !ok {
		return fmt.Errorf("power action %q: %w", a, ErrUnsupported)
	}
	return c.with(ctx, func(s *ipmi.Session) error { return s.ChassisControl(ctx, ca) })
}

// PowerState reads Get Chassis Status.
func (c IPMI) PowerState(ctx context.Context) (string, error) {
	var p string
	err := c.with(ctx, func(s *ipmi.Session) error {
		st, err := s.ChassisStatus(ctx)
		if err != nil {
			return err
		}
		p = "off"
		if st.PowerOn {
			p = "on"
		}
		return nil
	})
	return p, err
}

// Identify turns the chassis identify LED on (until turned off) or off.
func (c IPMI) Identify(ctx context.Context, on bool) error {
	return c.with(ctx, func(s *ipmi.Session) error { return s.Identify(ctx, 0, on) })
}
