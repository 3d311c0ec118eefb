package ipmi

import (
	"fmt"

	"github.com/bougou/go-ipmi/pkg/types"
)

// CipherSuite is an RMCP+ cipher suite ID (IPMI 2.0 table 22-20).
type CipherSuite uint8

// suiteAlgs are the algorithms a suite names.
type suiteAlgs struct {
	auth  types.AuthAlg
	integ types.IntegrityAlg
	conf  types.CryptAlg
}

// suites are the suites this engine implements. 0 is here so that it can be
// used when explicitly allowed (and audited); it is never chosen otherwise.
var suites = map[CipherSuite]suiteAlgs{
	0:  {types.AuthAlg_None, types.IntegrityAlg_None, types.CryptAlg_None},
	1:  {types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_None, types.CryptAlg_None},
	2:  {types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_HMAC_SHA1_96, types.CryptAlg_None},
	3:  {types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_HMAC_SHA1_96, types.CryptAlg_AES_CBC_128},
	6:  {types.AuthAlg_HMAC_MD5, types.IntegrityAlg_None, types.CryptAlg_None},
	7:  {types.AuthAlg_HMAC_MD5, types.IntegrityAlg_HMAC_MD5_128, types.CryptAlg_None},
	8:  {types.AuthAlg_HMAC_MD5, types.IntegrityAlg_HMAC_MD5_128, types.CryptAlg_AES_CBC_128},
	15: {types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_None, types.CryptAlg_None},
	16: {types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_HMAC_SHA256_128, types.CryptAlg_None},
	17: {types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_HMAC_SHA256_128, types.CryptAlg_AES_CBC_128},
}

// DefaultSuites is the order tried when a target pins none: the strongest
// suite first, then the one every IPMI 2.0 BMC must support.
var DefaultSuites = []CipherSuite{17, 3}

// Supported reports whether the engine implements suite s.
func (s CipherSuite) Supported() bool { _, ok := suites[s]; return ok }

func (s CipherSuite) String() string { return fmt.Sprintf("cipher suite %d", uint8(s)) }

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
