package probe

import (
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/redfish"
)

// NewTarget is the target of a check of account a of the machine name,
// each check silent for at most timeout: the one place an account becomes
// a Target (the monitor, the diagnosis, the security audit and check call
// it). The caller adds what is not the account's: the resolved address
// (Addr), the expected GUID, the learned profile, a fleet-wide suite
// allow-list when the account has none (Suites nil), a light check.
func NewTarget(name string, a protocol.Account, timeout time.Duration) Target {
	t := Target{Name: name, Protocol: a.Protocol, User: a.User, Password: a.Password, CipherSuite: a.CipherSuite,
		Privilege: ipmi.PrivilegeOf(a.Privilege), Timeout: timeout}
	if au, err := redfish.ParseAuth(a.RedfishAuth); err == nil {
		t.RedfishAuth = au
	} else {
		t.RedfishAuth = redfish.Auth(a.RedfishAuth) // the prober says what is wrong with it
	}
	if len(a.CipherSuites) > 0 {
		t.Suites = make([]ipmi.CipherSuite, len(a.CipherSuites))
		for i, n := range a.CipherSuites {
			t.Suites[i] = ipmi.CipherSuite(n)
		}
	}
	return t
}
