package power

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/internal/redfish"
)

// Redfish is a Channel over Redfish (HTTPS) through the fleet's shared
// transport. Each call reads the service root, authenticates as Auth says
// (auto: a session when the service offers one, else HTTP Basic), acts on
// the first ComputerSystem through gofish's typed resources, and logs out.
type Redfish struct {
	Transport http.RoundTripper
	Addr      netip.AddrPort
	User      string
	Password  []byte
	// Auth forces session or basic authentication ("" or auto: as the
	// service offers).
	Auth redfish.Auth
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

func (c Redfish) with(ctx context.Context, f func(*schemas.ComputerSystem) error) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cl := &redfish.Client{HTTP: &http.Client{Transport: redfish.HoldOnCancel(c.Transport), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		Base: "https://" + c.Addr.String(), User: c.User, Password: c.Password, Timeout: timeout}
	auth := c.Auth
	if auth == "" {
		auth = redfish.AuthAuto
	}
	root, _, err := cl.GetRoot(ctx)
	if he := (*redfish.HTTPError)(nil); errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) && auth != redfish.AuthSession {
		// A service root that wants credentials: only Basic can read it.
		cl.UseBasic()
		auth = redfish.AuthBasic
		root, _, err = cl.GetRoot(ctx)
	}
	if err != nil {
		return fmt.Errorf("redfish service root at %s: %w", c.Addr, err)
	}
	if _, err := cl.Authenticate(ctx, root, auth); err != nil {
		return fmt.Errorf("redfish login at %s: %w", c.Addr, err)
	}
	defer cl.Logout(context.WithoutCancel(ctx)) //nolint:errcheck // the session expires on the BMC anyway
	systems := root.Systems.ID
	if systems == "" {
		systems = "/redfish/v1/Systems"
	}
	var coll struct{ Members []redfish.Link }
	if err := cl.Get(ctx, systems, "ComputerSystemCollection", &coll); err != nil {
		return fmt.Errorf("redfish systems at %s: %w", c.Addr, err)
	}
	if len(coll.Members) == 0 || coll.Members[0].ID == "" {
		return errors.New("the Redfish service lists no ComputerSystem")
	}
	sys, err := schemas.GetObject[schemas.ComputerSystem](cl.Gofish(ctx), coll.Members[0].ID)
	if err != nil {
		return fmt.Errorf("redfish system at %s: %w", c.Addr, err)
	}
	return f(sys)
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

// IdentifyState reads LocationIndicatorActive where the system has it,
// else IndicatorLED (Lit: on, Blinking: blinking, Off: off).
func (c Redfish) IdentifyState(ctx context.Context) (string, error) {
	var id string
	err := c.with(ctx, func(s *schemas.ComputerSystem) error {
		switch {
		case s.LocationIndicatorActive != nil:
			id = "off"
			if *s.LocationIndicatorActive {
				id = "on"
			}
		case s.IndicatorLED == schemas.LitIndicatorLED:
			id = "on"
		case s.IndicatorLED == schemas.OffIndicatorLED:
			id = "off"
		case s.IndicatorLED != "":
			id = strings.ToLower(string(s.IndicatorLED))
		default:
			return fmt.Errorf("identify status: the system reports neither LocationIndicatorActive nor IndicatorLED: %w", ErrUnsupported)
		}
		return nil
	})
	return id, err
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
