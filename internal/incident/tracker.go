package incident

import (
	"slices"
	"time"
)

// DefaultGrace is how long an incident must be gone before it counts as
// closed, so a flapping BMC does not open and close it on every check.
const DefaultGrace = time.Minute

// Tracker follows successive Group results and says which incidents opened
// and which closed. It is pure (time comes in with every call) and not safe
// for concurrent use.
type Tracker struct {
	// Grace: an incident absent for less than this is still open (0:
	// DefaultGrace).
	Grace time.Duration
	open  map[string]*tracked
}

type tracked struct {
	inc  Incident
	gone time.Time // zero while present
}

// Changes of one Update.
type Changes struct {
	Opened []Incident
	Closed []Incident
}

// Update takes the incidents of now and returns those that opened (not
// open before) and those that closed (absent for Grace). An incident whose
// members changed stays open; its latest members are kept for its close.
func (t *Tracker) Update(now time.Time, cur []Incident) Changes {
	if t.open == nil {
		t.open = map[string]*tracked{}
	}
	grace := t.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	var ch Changes
	seen := make(map[string]bool, len(cur))
	for _, inc := range cur {
		seen[inc.ID] = true
		if tr, ok := t.open[inc.ID]; ok {
			tr.inc, tr.gone = inc, time.Time{}
			continue
		}
		t.open[inc.ID] = &tracked{inc: inc}
		ch.Opened = append(ch.Opened, inc)
	}
	for _, id := range sortedKeys(t.open) {
		tr := t.open[id]
		if seen[id] {
			continue
		}
		if tr.gone.IsZero() {
			tr.gone = now
		}
		if now.Sub(tr.gone) >= grace {
			ch.Closed = append(ch.Closed, tr.inc)
			delete(t.open, id)
		}
	}
	return ch
}

// Open is the IDs of the incidents the tracker holds open, sorted.
func (t *Tracker) Open() []string {
	ids := sortedKeys(t.open)
	return slices.Clip(ids)
}
