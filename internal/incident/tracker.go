package incident

import (
	"slices"
	"time"
)

// DefaultGrace is how long an incident must be gone before it counts as
// closed, so a flapping BMC does not open and close it on every check.
const DefaultGrace = time.Minute

// DefaultHold is how long an incident must last before it counts as
// opened: while a fleet's states settle (a start, an enclosure coming
// back blade by blade) passing groupings are not announced.
const DefaultHold = 30 * time.Second

// Tracker follows successive Group results and says which incidents opened
// and which closed. It is pure (time comes in with every call) and not safe
// for concurrent use.
type Tracker struct {
	// Grace: an incident absent for less than this is still open (0:
	// DefaultGrace).
	Grace time.Duration
	// Hold: an incident present for less than this is not opened yet,
	// and one gone before is forgotten unannounced (0: DefaultHold;
	// negative: none).
	Hold time.Duration
	open map[string]*tracked
}

type tracked struct {
	inc    Incident
	first  time.Time // first seen
	gone   time.Time // zero while present
	opened bool
}

// Changes of one Update.
type Changes struct {
	Opened []Incident
	Closed []Incident
}

// Update takes the incidents of now and returns those that opened
// (present for Hold, not open before) and those that closed (open, then
// absent for Grace). An incident whose members changed stays open; its
// latest members are kept for its close.
func (t *Tracker) Update(now time.Time, cur []Incident) Changes {
	if t.open == nil {
		t.open = map[string]*tracked{}
	}
	grace, hold := t.Grace, t.Hold
	if grace <= 0 {
		grace = DefaultGrace
	}
	if hold == 0 {
		hold = DefaultHold
	}
	var ch Changes
	seen := make(map[string]bool, len(cur))
	for _, inc := range cur {
		seen[inc.ID] = true
		tr, ok := t.open[inc.ID]
		if !ok {
			tr = &tracked{inc: inc, first: now}
			t.open[inc.ID] = tr
		}
		tr.inc, tr.gone = inc, time.Time{}
		if !tr.opened && now.Sub(tr.first) >= hold {
			tr.opened = true
			ch.Opened = append(ch.Opened, inc)
		}
	}
	for _, id := range sortedKeys(t.open) {
		tr := t.open[id]
		switch {
		case seen[id]:
		case !tr.opened:
			delete(t.open, id) // passed before it was announced
		default:
			if tr.gone.IsZero() {
				tr.gone = now
			}
			if now.Sub(tr.gone) >= grace {
				ch.Closed = append(ch.Closed, tr.inc)
				delete(t.open, id)
			}
		}
	}
	return ch
}

// Open is the IDs of the incidents the tracker has announced and not
// closed, sorted.
func (t *Tracker) Open() []string {
	var ids []string
	for _, id := range sortedKeys(t.open) {
		if t.open[id].opened {
			ids = append(ids, id)
		}
	}
	return slices.Clip(ids)
}
