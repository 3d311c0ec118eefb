// Package protocol names the management protocols lightsout speaks to a
// BMC and their default ports, once: an account, an enclosure or a
// command line without a port gets its protocol's. A leaf.
package protocol

// Protocol is a management protocol, as inventories, the store and the API
// spell it.
type Protocol string

// Protocols.
const (
	IPMI    Protocol = "ipmi"    // IPMI 2.0 / RMCP+ over UDP
	Redfish Protocol = "redfish" // Redfish over HTTPS
)

// Default ports.
const (
	IPMIPort    = 623 // RMCP, UDP
	RedfishPort = 443 // HTTPS
)

// Known reports whether p is a protocol lightsout speaks.
func (p Protocol) Known() bool { return p == IPMI || p == Redfish }

// DefaultPort is p's port when none is given: 623 for IPMI, 443 for
// Redfish, 0 for a protocol lightsout does not speak.
func (p Protocol) DefaultPort() int {
	switch p {
	case IPMI:
		return IPMIPort
	case Redfish:
		return RedfishPort
	}
	return 0
}

// Port is port, or p's default port when port is 0.
func (p Protocol) Port(port int) int {
	if port == 0 {
		return p.DefaultPort()
	}
	return port
}

// Account is what a check needs of an account: where (protocol, address,
// port) and how to log in. store.Account.Endpoint and
// inventory.Machine's fields give it; probe.NewTarget turns it into a
// check's target, the one way every checker (monitor, diagnosis, audit,
// check) builds one.
type Account struct {
	Protocol string // ipmi | redfish
	Address  string
	Port     int
	User     string
	Password []byte
	// Privilege is the IPMI privilege level's name ("": administrator).
	Privilege string
	// CipherSuite pins an IPMI cipher suite (0: negotiate); CipherSuites
	// is the account's allow-list, strongest first (nil: the caller's
	// default).
	CipherSuite  int
	CipherSuites []int
	// RedfishAuth forces the Redfish login: "session", "basic", or ""
	// (as the service offers).
	RedfishAuth string
}
