package diag

import "time"

// The executor (internal/diag/gather) words its findings as the trees do;
// these export the trees' small helpers to it.

// NonEmpty is s, or def when s is empty.
func NonEmpty(s, def string) string { return nonEmpty(s, def) }

// When renders a time for the operator (UTC, to the second).
func When(t time.Time) string { return when(t) }

// ReasonSuffix is " (r)", or "" when r is empty.
func ReasonSuffix(r string) string { return reasonSuffix(r) }

// Bridged reports whether the blade is asked about by standard IPMI
// bridging (the enclosure's kind ipmb).
func (b *Blade) Bridged() bool { return b.ipmb() }

// Foreign reports whether h is another console's (as the trees judge
// it): not from this manager's sockets, and either from another address
// or, when the BMC does not report the address, under another user.
func (h HeldSession) Foreign() bool { return h.foreign() }
