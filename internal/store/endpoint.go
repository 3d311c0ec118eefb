package store

import "github.com/lightsout/lightsout/internal/protocol"

// Endpoint is what a check needs of the account (probe.NewTarget builds
// the check's target from it).
func (a Account) Endpoint() protocol.Account {
	return protocol.Account{Protocol: a.Protocol, Address: a.Address, Port: a.Port, User: a.User, Password: a.Password,
		Privilege: a.Privilege, CipherSuite: a.CipherSuite, CipherSuites: a.CipherSuites, RedfishAuth: a.RedfishAuth}
}
