package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Faults is the set of faults injected into one simulated BMC. The zero
// value is a healthy BMC. Faults are set as a whole: [Fleet.SetFaults]
// replaces the previous set.
//
// Network faults are applied in the BMC's transport (the socket between the
// kernel and the go-ipmi server); identity faults change the BMC's state.
type Faults struct {
	// Silent drops every datagram: the BMC looks dead (no ICMP either, the
	// socket stays open).
	Silent bool `json:"silent,omitempty" yaml:"silent,omitempty"`
	// PortClosed closes the BMC's UDP socket, so the kernel answers with
	// ICMP port unreachable. Clearing it binds the socket again.
	PortClosed bool `json:"port_closed,omitempty" yaml:"port_closed,omitempty"`
	// WrongPassword changes the admin account's password to one nobody
	// knows (the fleet password no longer works).
	WrongPassword bool `json:"wrong_password,omitempty" yaml:"wrong_password,omitempty"`
	// UserRemoved deletes the admin account (as after a BMC replacement
	// where the user was not re-created).
	UserRemoved bool `json:"user_removed,omitempty" yaml:"user_removed,omitempty"`
	// GUIDReplaced gives the BMC a new System GUID (a motherboard swap).
	// The BMC restarts: open sessions are lost. Clearing it restores the
	// registered GUID.
	GUIDReplaced bool `json:"guid_replaced,omitempty" yaml:"guid_replaced,omitempty"`
	// SlotsFull makes every session slot look occupied: RMCP+ Open Session
	// answers status 0x01 (insufficient resources), IPMI 1.5 Activate
	// Session completion code 0x81 (no session slot available).
	SlotsFull bool `json:"slots_full,omitempty" yaml:"slots_full,omitempty"`
	// Insecure makes the BMC fail a security audit: the anonymous (null)
	// user is enabled with an empty password and ADMINISTRATOR privilege,
	// RMCP+ cipher suites 0-2 (no or weak integrity and encryption) are
	// offered, and IPMI 1.5 offers authentication types none and straight
	// password besides MD5.
	Insecure bool `json:"insecure,omitempty" yaml:"insecure,omitempty"`
	// Slow delays every reply by this much (at most 60s).
	Slow Duration `json:"slow,omitempty" yaml:"slow,omitempty"`
	// Lossy drops this fraction (0..1) of incoming datagrams.
	Lossy float64 `json:"lossy,omitempty" yaml:"lossy,omitempty"`
	// TimeoutRate drops this fraction (0..1) of replies after the BMC
	// processed the request (the request took effect, the answer is lost).
	TimeoutRate float64 `json:"timeout_rate,omitempty" yaml:"timeout_rate,omitempty"`
	// Malformed corrupts or truncates this fraction (0..1) of replies.
	Malformed float64 `json:"malformed,omitempty" yaml:"malformed,omitempty"`
}

// MaxSlow bounds [Faults.Slow].
const MaxSlow = 60 * time.Second

// Zero reports whether no fault is set.
func (f Faults) Zero() bool { return f == Faults{} }

// Names lists the faults that are set, by their JSON names, in a fixed
// order (for status lines and logs).
func (f Faults) Names() []string {
	var out []string
	add := func(on bool, name string) {
		if on {
			out = append(out, name)
		}
	}
	add(f.Silent, "silent")
	add(f.PortClosed, "port_closed")
	add(f.WrongPassword, "wrong_password")
	add(f.UserRemoved, "user_removed")
	add(f.GUIDReplaced, "guid_replaced")
	add(f.SlotsFull, "slots_full")
	add(f.Insecure, "insecure")
	if f.Slow > 0 {
		out = append(out, "slow="+time.Duration(f.Slow).String())
	}
	if f.Lossy > 0 {
		out = append(out, "lossy="+strconv.FormatFloat(f.Lossy, 'g', -1, 64))
	}
	if f.TimeoutRate > 0 {
		out = append(out, "timeout_rate="+strconv.FormatFloat(f.TimeoutRate, 'g', -1, 64))
	}
	if f.Malformed > 0 {
		out = append(out, "malformed="+strconv.FormatFloat(f.Malformed, 'g', -1, 64))
	}
	return out
}

// FieldError is a bad value in a fault set, a fleet file or a control API
// request: Field names it (dotted path, e.g. "faults.bmc-00003.lossy"),
// Reason says what is wrong with it.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
	// Line is the line of a fleet file the field is on (0: unknown).
	Line int `json:"line,omitempty"`
}

func (e *FieldError) Error() string {
	s := e.Field + ": " + e.Reason
	if e.Field == "" {
		s = e.Reason
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, s)
	}
	return s
}

func fieldErr(field, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// Validate checks the values of f. prefix is prepended to field names
// ("" for bare names).
func (f Faults) Validate(prefix string) error {
	rate := func(name string, v float64) error {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return fieldErr(prefix+name, "must be a fraction between 0 and 1, got %v", v)
		}
		return nil
	}
	if err := rate("lossy", f.Lossy); err != nil {
		return err
	}
	if err := rate("timeout_rate", f.TimeoutRate); err != nil {
		return err
	}
	if err := rate("malformed", f.Malformed); err != nil {
		return err
	}
	if f.Slow < 0 || time.Duration(f.Slow) > MaxSlow {
		return fieldErr(prefix+"slow", "must be a duration between 0 and %s, got %s", MaxSlow, time.Duration(f.Slow))
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("250ms",
// "2s") in JSON and YAML. A JSON number is read as milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*d = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := parseDuration(str)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	ms, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(ms) || math.IsInf(ms, 0) {
		return fmt.Errorf("not a duration: %s (want a string like \"500ms\" or a number of milliseconds)", s)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a duration string ("2s"); a bare integer is
// milliseconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// Errors are TypeErrors so the decoder reports them with their line.
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: not a duration (want a string like \"500ms\")", n.Line)}}
	}
	if ms, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		*d = Duration(time.Duration(ms) * time.Millisecond)
		return nil
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = v
	return nil
}

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("not a duration: %q (want e.g. \"500ms\" or \"2s\")", s)
	}
	return Duration(v), nil
}
