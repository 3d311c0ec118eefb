package sim

import "net/netip"

// countSource counts a session opened from ip (b.trMu held).
func (t *tracking) countSource(ip netip.Addr) {
	if t.bySource == nil {
		t.bySource = make(map[netip.Addr]uint64, 1)
	}
	t.bySource[ip]++
}

// SessionsBySource returns how many sessions each client IP address has
// opened on the BMC since the fleet started: the scale-out tests tell
// instances apart by their source address (lightsout server
// --source-address) and check that every BMC is checked by one.
func (b *BMC) SessionsBySource() map[netip.Addr]uint64 {
	b.trMu.Lock()
	defer b.trMu.Unlock()
	out := map[netip.Addr]uint64{}
	if b.tr != nil {
		for ip, n := range b.tr.bySource {
			out[ip] = n
		}
	}
	return out
}
