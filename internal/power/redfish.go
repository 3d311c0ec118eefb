package power

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
)

// Redfish is a Channel over Redfish (HTTPS) through the fleet's shared
// transport. Each call logs in (session), acts on the first ComputerSystem
// and logs out.
type Redfish struct {
	Transport http.RoundTripper
	Addr      netip.AddrPort
	User      string
	Password  []byte
	// Timeout bounds each HTTP request (default 10s).
	Timeout time.Duration
}

// resetPreferences are the Redfish ResetType values for each action, best
// first; the first one the BMC allows is used.
var resetPreferences = map[Action][]schemas.ResetType{
	On:      {schemas.OnResetType, schemas.ForceOnResetType},
	Off:     {schemas.ForceOffResetType},
	SoftOff: {schemas.GracefulShutdownResetType, schemas.PushPowerButtonResetType},
	Cycle:   {schemas.PowerCycleResetType, schemas.FullPowerCycleResetType, schemas.ForceRestartResetType},
	Reset:   {schemas.ForceRestartResetType, schemas.GracefulRestartResetType},
}

// ResetTypeFor picks the ResetType for a among the allowable values (all
// of the preferences are tried in order; with no allowable values listed,
// the first preference).
func ResetTypeFor(a Action, allowed []schemas.ResetType) (schemas.ResetType, error) {
	prefs, ok := resetPreferences[a]
	if !ok {
		return "", fmt.Errorf("power action %q: %w", a, ErrUnsupported)
	}
	if len(allowed) == 0 {
		return prefs[0], nil
	}
	for _, p := range prefs {
		for _, v := range allowed {
			if p == v {
				return p, nil
			}
		}
	}
	names := make([]string, len(allowed))
	for i, v := range allowed {
		names[i] = string(v)
	}
	return "", fmt.Errorf("power action %q: the BMC allows ResetType %s only: %w", a, strings.Join(names, ", "), ErrUnsupported)
}

// noIdleClose hides CloseIdleConnections from gofish's Logout, which would
// otherwise close the whole fleet's idle connections.
type noIdleClose struct {
	rt      http.RoundTripper
	timeout time.Duration
}

func (n noIdleClose) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), n.timeout)
	resp, err := n.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	cancel context.CancelFunc
}

func (c *cancelOnClose) Read(p []byte) (int, error) { return c.rc.Read(p) }
func (c *cancelOnClose) Close() error               { err := c.rc.Close(); c.cancel(); return err }

func (c Redfish) with(ctx context.Context, f func(*schemas.ComputerSystem) error) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	client := &http.Client{Transport: noIdleClose{c.Transport, timeout}}
	api, err := gofish.ConnectContext(ctx, gofish.ClientConfig{
		Endpoint: "https://" + c.Addr.String(), Username: c.User, Password: string(c.Password),
		HTTPClient: client, NoModifyTransport: true, ReuseConnections: true, Insecure: true,
	})
	if err != nil {
		return fmt.Errorf("redfish login at %s: %w", c.Addr, err)
	}
	defer api.Logout()
	systems, err := api.Service.Systems()
	if err != nil {
		return fmt.Errorf("redfish systems at %s: %w", c.Addr, err)
	}
	if len(systems) == 0 {
		return errors.New("the Redfish service lists no ComputerSystem")
	}
	return f(systems[0])
}

// SetPower posts ComputerSystem.Reset with the ResetType the BMC allows
// for a.
func (c Redfish) SetPower(ctx context.Context, a Action) error {
	if _, ok := resetPreferences[a]; !ok {
		return fmt.Errorf("power action %q: %w", a, ErrUnsupported)
	}
	return c.with(ctx, func(s *schemas.ComputerSystem) error {
		allowed, _ := s.GetSupportedResetTypes()
		rt, err := ResetTypeFor(a, allowed)
		if err != nil {
			return err
		}
		_, err = s.Reset(rt)
		return err
	})
}

// PowerState reads the system's PowerState ("on", "off"; transitional
// states are reported as Redfish names them, lower-cased).
func (c Redfish) PowerState(ctx context.Context) (string, error) {
	var p string
	err := c.with(ctx, func(s *schemas.ComputerSystem) error {
		p = strings.ToLower(string(s.PowerState))
		return nil
	})
	return p, err
}

// Identify sets LocationIndicatorActive where the system has it, else
// IndicatorLED (Lit or Off).
func (c Redfish) Identify(ctx context.Context, on bool) error {
	return c.with(ctx, func(s *schemas.ComputerSystem) error {
		if s.LocationIndicatorActive != nil {
			s.LocationIndicatorActive = &on
		} else {
			s.IndicatorLED = schemas.OffIndicatorLED
			if on {
				s.IndicatorLED = schemas.LitIndicatorLED
			}
		}
		return s.Update()
	})
}
