package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/store"
)

// DefaultBuffer is how many state changes an instance keeps in memory
// while the database is unreachable (Config.Buffer).
const DefaultBuffer = 10000

// buffer holds the channel states (and their transitions) the monitor
// declared while the database could not be written, in order, until a
// flush writes them (docs/scale-out.md, "When the database is
// unreachable"). Only the part of the lease still valid produces any: an
// instance that cannot renew its lease fences itself and checks nothing.
type buffer struct {
	mu         sync.Mutex
	entries    []bufEntry
	since      time.Time // first entry of the outage
	dropped    int64     // refused: the buffer was full
	superseded int64     // not written at the flush: a newer state was stored
	flushed    int64
}

type bufEntry struct {
	state store.ChannelState
	tr    *store.Transition
}

// unreachable says whether err is the database failing (to be buffered),
// not a refusal of this write (a deleted account, a bad value).
func unreachable(err error) bool {
	var fe *store.FieldError
	return err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) && !errors.As(err, &fe)
}

// saveState writes through inner, or buffers the write when the database
// is unreachable (or earlier writes are still buffered: order is kept).
// nil means written or buffered: the monitor publishes the transition.
func (n *Node) saveState(ctx context.Context, inner store.Store, s store.ChannelState, t *store.Transition) error {
	b := &n.buf
	b.mu.Lock()
	pending := len(b.entries) > 0
	b.mu.Unlock()
	if !pending {
		err := inner.SaveState(ctx, s, t)
		if !unreachable(err) {
			return err
		}
		n.log.Warn("cluster: the database is unreachable: buffering state changes in memory until it is back", "bound", n.cfg.Buffer, "err", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.entries) >= n.cfg.Buffer {
		b.dropped++
		return errors.New("cluster: the database is unreachable and the buffer of state changes is full (" + itoa(n.cfg.Buffer) + ")")
	}
	if len(b.entries) == 0 {
		b.since = time.Now()
	}
	if t == nil {
		// A state without a transition replaces the account's last one
		// without a transition, if it is the newest buffered for it.
		for i := len(b.entries) - 1; i >= 0; i-- {
			if e := b.entries[i]; e.state.AccountID == s.AccountID {
				if e.tr == nil {
					b.entries[i].state = s
					return nil
				}
				break
			}
		}
	}
	b.entries = append(b.entries, bufEntry{state: s, tr: t})
	return nil
}

func itoa(n int) string {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(d[i:])
		}
	}
}

// Buffered is how many state changes wait for the database.
func (n *Node) Buffered() int {
	n.buf.mu.Lock()
	defer n.buf.mu.Unlock()
	return len(n.buf.entries)
}

// BufferedTransitions are the transitions waiting for the database, in
// the order they were declared.
func (n *Node) BufferedTransitions() []store.Transition {
	n.buf.mu.Lock()
	defer n.buf.mu.Unlock()
	var out []store.Transition
	for _, e := range n.buf.entries {
		if e.tr != nil {
			out = append(out, *e.tr)
		}
	}
	return out
}

// flush writes the buffered state changes in order, once the database
// answers again (at the heartbeat that renewed the lease). A buffered
// state older than the one stored (another instance took the machine over
// meanwhile and checked it) is not written, nor its transition. It stops
// at the first write that fails and keeps the rest for the next heartbeat.
func (n *Node) flush(ctx context.Context, inner store.Store) {
	b := &n.buf
	b.mu.Lock()
	entries := b.entries
	since := b.since
	b.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	stored := map[int64]store.ChannelState{}
	if sb, ok := inner.(interface {
		StatesOf(context.Context, []int64) (map[int64]store.ChannelState, error)
	}); ok {
		ids := make([]int64, 0, len(entries))
		for _, e := range entries {
			ids = append(ids, e.state.AccountID)
		}
		var err error
		if stored, err = sb.StatesOf(ctx, ids); err != nil {
			return // still unreachable
		}
	}
	done, skipped := 0, 0
	for _, e := range entries {
		if cur, ok := stored[e.state.AccountID]; ok && cur.CheckedAt.After(e.state.CheckedAt) {
			skipped++
			done++
			continue
		}
		if err := inner.SaveState(ctx, e.state, e.tr); err != nil && unreachable(err) {
			break
		}
		done++
	}
	b.mu.Lock()
	b.entries = b.entries[done:]
	b.superseded += int64(skipped)
	b.flushed += int64(done - skipped)
	left := len(b.entries)
	b.mu.Unlock()
	if left == 0 {
		n.log.Info("cluster: the database is back: buffered state changes written", "written", done-skipped, "superseded", skipped,
			"outage_buffered_for", time.Since(since).Round(time.Second))
	}
}
