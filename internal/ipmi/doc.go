// Package ipmi is lightsout's IPMI 2.0 RMCP+ client: wire codecs and a
// multiplexed engine that talks to thousands of BMCs over a few UDP sockets.
//
// The engine keeps at most one request in flight and one session open per
// BMC, retransmits with bounded back-off, demultiplexes replies by the
// console session ID it chose (unique per session) or, before a session
// exists, by the BMC's address, and verifies the session ID, sequence number
// and integrity code of every reply. Message codecs and RAKP/AES crypto come
// from github.com/bougou/go-ipmi; every decode of network input here is
// bounds-checked first and guarded, so a malformed datagram is counted and
// dropped, never a panic.
//
// Failures are typed: callers classify with errors.Is against the sentinel
// errors in errors.go (ErrNoResponse, ErrWrongPassword, ErrNoSessionSlot, …)
// and errors.As to *StageError for where in the exchange it happened.
package ipmi
