// Package hostlink is the host agent's link to its own BMC: the idea of
// Dell iSM ↔ iDRAC "OS-to-BMC pass-through", plus the Linux in-band IPMI
// device.
//
// # Paths, in order
//
//  1. In-band: the IPMI system interface (/dev/ipmi0 through the OpenIPMI
//     driver; go-ipmi's pkg/open DeviceBackend). Get Device ID (NetFn App
//     0x06, cmd 0x01) proves the path and gives the firmware revision; Get
//     System GUID (0x06/0x37) gives the UUID. A missing device is not a
//     failure of the link: the path is skipped and noted in the attempts.
//  2. IPv4 over the OS-to-BMC network: the BMC's link endpoint on an IPv4
//     link-local address (default 169.254.0.1:443).
//  3. IPv6, when IPv4 is disabled or failed: the endpoint on an IPv6
//     link-local address scoped to the host's interface towards the BMC
//     (default [fe80::1%usb0]:443: usb0 is the name Linux gives the BMC's
//     USB NIC; set the zone to the host's interface name).
//
// Check stops at the first path that answers. When every enabled path
// fails the observation is Down (or CertExpired / NotTrusted when a
// certificate is the cause) with every attempt's reason; with every path
// disabled it is Disabled.
//
// # The certificate
//
// The network paths are HTTPS (TLS ≥ 1.2): GET /link/v1/identity answers
// {"uuid", "firmware", "service": "lightsout-hostlink"}. The agent presents
// its link client certificate, issued by the manager's CA, which the BMC's
// endpoint requires and verifies. The certificate is read at every check
// (Config.Certificate) since the agent renews it. A certificate past its
// NotAfter is not even presented: the state is CertExpired at once, and a
// BMC refusing the certificate with a TLS alert (certificate_expired →
// CertExpired, bad_certificate / unknown_ca / … → NotTrusted) is a clear
// state, not a generic failure. The BMC's server certificate is pinned by
// its SHA-256 fingerprint (Config.BMCFingerprint, as internal/pki's
// Fingerprint); without a pin any certificate is accepted and its
// fingerprint reported for the caller to pin (trust on first use).
//
// # Timeouts
//
// Like the tunable waits of the Windows IPMI driver (IPMIDRV), every try
// is bounded by Config.Timeout (default 5s: dial + TLS handshake + request
// + answer on the network paths, one command on the device) and a
// timed-out try is retried Config.Retries times (default 2). Only timeouts
// are retried: a refused connection or a refused certificate is an answer.
// Every timed-out try counts in Observation.Timeouts.
package hostlink
