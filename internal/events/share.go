package events

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Digest is what the fleet detectors need of one source from the instance
// that checks it, for the instances that do not (docs/scale-out.md: fleet
// correlation by firmware, enclosure and subnet, and timeout floods, over
// the whole fleet, not one instance's share): its groups and the codes
// that hold on it now. Instances share a digest when it changed, and
// again before the correlator would forget the source (KeepAlive).
type Digest struct {
	Source    string    `json:"s"`
	Firmware  string    `json:"f,omitempty"`
	Enclosure string    `json:"e,omitempty"`
	Subnet    string    `json:"n,omitempty"`
	Held      []string  `json:"h,omitempty"` // heldCodes holding, in heldCodes' order
	FloodFrom time.Time `json:"ff,omitzero"` // when its timeout flood began (OOBTimeoutFlood held)
	At        time.Time `json:"t"`
}

// same: d says what o says (At aside).
func (d Digest) same(o Digest) bool {
	return d.Source == o.Source && d.Firmware == o.Firmware && d.Enclosure == o.Enclosure && d.Subnet == o.Subnet &&
		slices.Equal(d.Held, o.Held) && d.FloodFrom.Equal(o.FloodFrom)
}

// KeepAlive: an unchanged digest is shared again after this long, well
// within the correlator's MemberTTL (2 h), so peers keep the source in
// its groups.
const KeepAlive = 30 * time.Minute

// digestOf is s's digest after the watcher observed it (w.mu held by the
// caller): the codes Observe holds on it.
func (w *Watcher) digestOf(s Sample) Digest {
	d := Digest{Source: s.Source, Enclosure: s.Enclosure, Subnet: SubnetOf(s.Address), At: s.At}
	if ms, ok := w.Correlate.members[s.Source]; ok {
		d.Firmware = ms.m.Firmware // the last one reported when this check saw none
	}
	_, degraded := w.degraded[s.Source]
	for _, code := range heldCodes {
		var held bool
		switch code {
		case OOBNotResponding:
			held = s.Declared == state.NotResponding
		case OOBAuthRefused:
			held = s.Declared == state.NotAuthenticated
		case OOBIdentityMismatch:
			held = s.Declared == state.Invalid
		case OOBDegraded:
			held = degraded
		case OOBTimeoutFlood:
			held = w.Flood.Flooding(s.Source)
			if held {
				d.FloodFrom = w.Flood.src[s.Source].on.since
			}
		}
		if held {
			d.Held = append(d.Held, code)
		}
	}
	return d
}

// observeDigest feeds a source another instance checks into the
// correlator (its groups, what holds on it), and keeps its flood for
// incidents (Fleet).
func (w *Watcher) observeDigest(d Digest, floods map[string]time.Time) []store.Event {
	if d.Source == "" {
		return nil
	}
	w.Correlate.SetMember(d.Source, Member{Firmware: d.Firmware, Enclosure: d.Enclosure, Subnet: d.Subnet}, d.At)
	if !d.FloodFrom.IsZero() {
		floods[d.Source] = d.FloodFrom
	} else {
		delete(floods, d.Source)
	}
	var out []store.Event
	for _, code := range heldCodes {
		out = append(out, w.Correlate.Hold(code, d.Source, slices.Contains(d.Held, code), d.At)...)
	}
	return out
}

// ShareDigests makes the recorder keep, from every check, the digests its
// peers need (TakeDigests); off (the default) when it runs alone.
func (r *Recorder) ShareDigests(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sharing = on
	if !on {
		r.sent, r.pending = nil, nil
	}
}

// TakeDigests returns the digests that changed (or are due again) since
// the last call, for the peers.
func (r *Recorder) TakeDigests() []Digest {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pending
	r.pending = nil
	return out
}

// Resync shares every source's digest again at its next check: the
// members changed, and a new one — perhaps the next leader — knows none.
func (r *Recorder) Resync() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sharing {
		r.sent = map[string]Digest{}
	}
}

// share (r.mu held) queues s's digest when it changed or is due again.
func (r *Recorder) share(s Sample) {
	if !r.sharing || s.Source == "" {
		return
	}
	d := r.w.digestOf(s)
	if r.sent == nil {
		r.sent = map[string]Digest{}
	}
	if last, ok := r.sent[s.Source]; ok && last.same(d) && d.At.Sub(last.At) < KeepAlive {
		return
	}
	r.sent[s.Source] = d
	r.pending = append(r.pending, d)
}

// Remote feeds digests of sources other instances check: the correlator
// then sees the whole fleet (every instance's does, so a new leader
// needs no catching up); what it finds is raised by the leader only
// (Config.Leader).
func (r *Recorder) Remote(ds []Digest) {
	r.mu.Lock()
	var evs []store.Event
	for _, d := range ds {
		evs = append(evs, r.w.observeDigest(d, r.remoteFlood)...)
	}
	r.mu.Unlock()
	r.enqueue(evs...)
}

// MarshalDigests packs digests into JSON batches of at most limit bytes
// each (a PostgreSQL notification carries under 8,000).
func MarshalDigests(ds []Digest, limit int) [][]byte {
	var out [][]byte
	var cur []json.RawMessage
	size := 2
	flush := func() {
		if len(cur) > 0 {
			b, _ := json.Marshal(cur)
			out = append(out, b)
			cur, size = nil, 2
		}
	}
	for _, d := range ds {
		b, err := json.Marshal(d)
		if err != nil || len(b)+2 > limit {
			continue // a source name that long cannot be shared
		}
		if size+len(b)+1 > limit {
			flush()
		}
		cur = append(cur, b)
		size += len(b) + 1
	}
	flush()
	return out
}

// UnmarshalDigests reverses MarshalDigests for one batch.
func UnmarshalDigests(b []byte) ([]Digest, error) {
	var ds []Digest
	err := json.Unmarshal(b, &ds)
	return ds, err
}
