// Package vocab is the vocabulary of IPMI that the engine (internal/ipmi),
// the probers and the diagnosis share: cipher suites and privileges, the
// answers a check keeps as evidence (authentication capabilities, chassis
// and blade status), the handshake stages, and what is learned about a BMC
// (Profile, Quirk, Negotiation). It does no I/O and imports nothing that
// does, so that the pure cores (internal/diag, internal/evidence) can name
// these types without pulling in the network. Package ipmi keeps aliases
// of every name here; this package is canonical.
package vocab
