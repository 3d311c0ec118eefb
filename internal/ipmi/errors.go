package ipmi

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. A failure from the engine wraps exactly one of these
// (plus ErrMalformed for protocol garbage); classify with errors.Is.
var (
	// ErrNoResponse: no usable reply before the deadline.
	ErrNoResponse = errors.New("ipmi: no response")
	// ErrPortUnreachable: ICMP port unreachable — the host is up but nothing
	// listens on the IPMI port.
	ErrPortUnreachable = errors.New("ipmi: port unreachable")
	// ErrHostUnreachable: ICMP host or network unreachable.
	ErrHostUnreachable = errors.New("ipmi: host unreachable")

	// ErrAuth is wrapped by every "the BMC refused the account" error.
	ErrAuth = errors.New("ipmi: authentication refused")
	// ErrWrongPassword: RAKP 2's key exchange code does not verify with our
	// password (or the BMC said so in RAKP 4).
	ErrWrongPassword = fmt.Errorf("%w: wrong password", ErrAuth)
	// ErrUnknownUser: the BMC does not know the user name (RAKP status 0x0d).
	ErrUnknownUser = fmt.Errorf("%w: unknown user", ErrAuth)
	// ErrPrivilege: the account may not have the requested privilege.
	ErrPrivilege = fmt.Errorf("%w: privilege level not permitted", ErrAuth)
	// ErrLocked: the account exists but is disabled or locked out (RAKP
	// status 0x09 "invalid role": we always request a valid role, and BMCs
	// such as OpenBMC answer it for a disabled user; an IPMI 2.0 lockout
	// after bad passwords disables the user for the lockout interval).
	ErrLocked = fmt.Errorf("%w: account disabled or locked", ErrAuth)

	// ErrNoSessionSlot: the BMC has no free session slot (status 0x01/0x0b).
	// Not an authentication failure.
	ErrNoSessionSlot = errors.New("ipmi: no free session slot")
	// ErrNoCipherSuite: no cipher suite in common with the BMC.
	ErrNoCipherSuite = errors.New("ipmi: no cipher suite in common")
	// ErrCipher0: cipher suite 0 (no authentication) would be needed and was
	// not explicitly allowed.
	ErrCipher0 = errors.New("ipmi: cipher suite 0 refused (not allowed)")
	// ErrNoIPMI20: the BMC does not speak IPMI 2.0 / RMCP+.
	ErrNoIPMI20 = errors.New("ipmi: BMC does not support IPMI 2.0 RMCP+")
	// ErrIPMI15Only: the BMC says it speaks IPMI 1.5 only and does not
	// answer RMCP+ (Open Session): lightsout needs IPMI 2.0. Wraps
	// ErrNoIPMI20.
	ErrIPMI15Only = fmt.Errorf("%w: the BMC speaks IPMI 1.5 only (its capabilities say so, and it does not answer RMCP+ Open Session); lightsout needs IPMI 2.0", ErrNoIPMI20)
	// ErrRejected: the BMC refused the session for another RMCP+ status.
	ErrRejected = errors.New("ipmi: session refused")
	// ErrClosed: the engine or session was closed.
	ErrClosed = errors.New("ipmi: closed")
)

// StageError says where an exchange failed and what the BMC said, if
// anything. Its Unwrap is the sentinel.
type StageError struct {
	Stage Stage
	// Status is the RMCP+ status code the BMC returned (0 if none).
	Status byte
	// Attempts is how many datagrams were sent for this stage.
	Attempts int
	// Elapsed is how long the stage took.
	Elapsed time.Duration
	// BMCGUID is the managed system GUID RAKP 2 carried, when the failure
	// came after it (zero otherwise): a refused password from a BMC whose
	// GUID is not the registered one points at the wrong BMC, not the
	// wrong password.
	BMCGUID [16]byte
	// Negotiation, on a failure of Open, says which cipher suites were
	// offered and tried.
	Negotiation *Negotiation
	Err         error
}

func (e *StageError) Error() string {
	s := fmt.Sprintf("%s: %v", e.Stage, e.Err)
	if e.Status != 0 {
		s += fmt.Sprintf(" (RMCP+ status %#02x %s)", e.Status, statusText(e.Status))
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	return s
}

func (e *StageError) Unwrap() error { return e.Err }

// CompletionError is a non-zero IPMI completion code.
type CompletionError struct {
	NetFn, Cmd, Code byte
}

func (e *CompletionError) Error() string {
	return fmt.Sprintf("ipmi: netfn %#02x cmd %#02x: completion code %#02x (%s)", e.NetFn, e.Cmd, e.Code, ccText(e.Code))
}

// statusErr maps an RMCP+ status code to its sentinel.
func statusErr(code byte) error {
	switch code {
	case 0x01, 0x0b:
		return ErrNoSessionSlot
	case 0x09:
		return ErrLocked
	case 0x0a:
		return ErrPrivilege
	case 0x0d, 0x0c:
		return ErrUnknownUser
	case 0x0f:
		return ErrWrongPassword
	case 0x04, 0x05, 0x06, 0x07, 0x10, 0x11:
		return ErrNoCipherSuite
	}
	return ErrRejected
}

func statusText(code byte) string {
	switch code {
	case 0x01:
		return "insufficient resources to create a session"
	case 0x02:
		return "invalid session ID"
	case 0x03:
		return "invalid payload type"
	case 0x04:
		return "invalid authentication algorithm"
	case 0x05:
		return "invalid integrity algorithm"
	case 0x06:
		return "no matching authentication payload"
	case 0x07:
		return "no matching integrity payload"
	case 0x08:
		return "inactive session ID"
	case 0x09:
		return "invalid role"
	case 0x0a:
		return "unauthorized role or privilege level requested"
	case 0x0b:
		return "insufficient resources to create a session at the requested role"
	case 0x0c:
		return "invalid name length"
	case 0x0d:
		return "unauthorized name"
	case 0x0e:
		return "unauthorized GUID"
	case 0x0f:
		return "invalid integrity check value"
	case 0x10:
		return "invalid confidentiality algorithm"
	case 0x11:
		return "no cipher suite match with proposed security algorithms"
	case 0x12:
		return "illegal or unrecognized parameter"
	}
	return "unknown status"
}

func ccText(cc byte) string {
	switch cc {
	case 0xc0:
		return "node busy"
	case 0xc1:
		return "invalid command"
	case 0xc3:
		return "timeout"
	case 0xc7, 0xc8:
		return "request data length invalid"
	case 0xcc:
		return "invalid data field"
	case 0xd4:
		return "insufficient privilege"
	case 0xd5:
		return "not supported in present state"
	case 0xff:
		return "unspecified error"
	}
	return "see IPMI 2.0 table 5-2"
}
