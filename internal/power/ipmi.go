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

// raise asks for the account's privilege before a command that needs more
// than User. An RMCP+ session starts at the lower of User and the
// privilege asked in RAKP 1 (IPMI 2.0 section 13.x: ipmi_sim and strict
// BMCs answer Chassis Control 0xD4 until raised), as ipmitool and FreeIPMI
// raise it after every login. A BMC without the command (0xC1) or one
// that refuses it still gets the command: its own answer is the verdict.
func (c IPMI) raise(ctx context.Context, s *ipmi.Session) {
	p := c.Creds.Privilege
	if p == 0 {
		p = ipmi.PrivilegeAdministrator
	}
	if p > ipmi.PrivilegeUser {
		_ = s.SetPrivilege(ctx, p)
	}
}

// SetPower runs Chassis Control at the account's privilege.
func (c IPMI) SetPower(ctx context.Context, a Action) error {
	ca, ok := chassis[a]
	if !ok {
		return fmt.Errorf("power action %q: %w", a, ErrUnsupported)
	}
	return c.with(ctx, func(s *ipmi.Session) error {
		c.raise(ctx, s)
		return s.ChassisControl(ctx, ca)
	})
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

// IdentifyState reads the identify state from Get Chassis Status (a BMC
// that does not report it: ErrUnsupported).
func (c IPMI) IdentifyState(ctx context.Context) (string, error) {
	var id string
	err := c.with(ctx, func(s *ipmi.Session) error {
		st, err := s.ChassisStatus(ctx)
		id = st.Identify
		return err
	})
	if err == nil && (id == "" || id == "reserved") {
		return "", fmt.Errorf("identify status: the BMC's Get Chassis Status does not report the identify state: %w", ErrUnsupported)
	}
	return id, err
}

// Identify turns the chassis identify LED on (until turned off) or off.
func (c IPMI) Identify(ctx context.Context, on bool) error {
	return c.with(ctx, func(s *ipmi.Session) error {
		c.raise(ctx, s)
		return s.Identify(ctx, 0, on)
	})
}
