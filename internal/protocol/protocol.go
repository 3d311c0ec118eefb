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
