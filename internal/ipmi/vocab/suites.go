package vocab

import (
	"fmt"
	"strconv"
)

// CipherSuite is an RMCP+ cipher suite ID (IPMI 2.0 table 22-20).
type CipherSuite uint8

// DefaultSuites is the order tried when a target pins none: the strongest
// suite first, then the one every IPMI 2.0 BMC must support.
var DefaultSuites = []CipherSuite{17, 3}

// Supported reports whether the engine implements suite s.
func (s CipherSuite) Supported() bool { return implemented[s] }

// implemented are the suites the engine implements (internal/ipmi's
// algorithm table, which a test there keeps equal to this). 0 is here so
// that it can be used when explicitly allowed (and audited); it is never
// chosen otherwise.
var implemented = map[CipherSuite]bool{0: true, 1: true, 2: true, 3: true, 6: true, 7: true, 8: true, 15: true, 16: true, 17: true}

func (s CipherSuite) String() string { return suiteNames[s] }

// suiteNames are the suites' names, made once: a check names its suite
// several times (messages, the negotiation's reason).
var suiteNames = func() (t [256]string) {
	for i := range t {
		t[i] = "cipher suite " + strconv.Itoa(i)
	}
	return t
}()

// Privilege is an IPMI privilege level.
type Privilege uint8

const (
	PrivilegeCallback      Privilege = 1
	PrivilegeUser          Privilege = 2
	PrivilegeOperator      Privilege = 3
	PrivilegeAdministrator Privilege = 4
)

// ParsePrivilege reads user|operator|administrator (or admin).
func ParsePrivilege(s string) (Privilege, error) {
	switch s {
	case "callback":
		return PrivilegeCallback, nil
	case "user":
		return PrivilegeUser, nil
	case "operator":
		return PrivilegeOperator, nil
	case "administrator", "admin", "":
		return PrivilegeAdministrator, nil
	}
	return 0, fmt.Errorf("privilege %q: want user, operator or administrator", s)
}

// PrivilegeOf is the privilege a stored account asks for: its name as
// ParsePrivilege reads it, Administrator when empty or not a level.
func PrivilegeOf(s string) Privilege {
	if p, err := ParsePrivilege(s); err == nil {
		return p
	}
	return PrivilegeAdministrator
}

func (p Privilege) String() string {
	switch p {
	case PrivilegeCallback:
		return "callback"
	case PrivilegeUser:
		return "user"
	case PrivilegeOperator:
		return "operator"
	case PrivilegeAdministrator:
		return "administrator"
	}
	return fmt.Sprintf("privilege(%d)", uint8(p))
}

// MarshalJSON writes the suite as its number (a []CipherSuite is a list of
// numbers, not base64 bytes).
func (s CipherSuite) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprint(uint8(s))), nil }
