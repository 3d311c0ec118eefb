package power

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

func TestParseAction(t *testing.T) {
	for _, s := range []string{"on", "OFF", "soft", "soft-off", "cycle", "reset", "status", "identify-on", "identify-off", "identify-status"} {
		if _, err := ParseAction(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	_, err := ParseAction("explode")
	if err == nil || !strings.Contains(err.Error(), "identify-off") {
		t.Fatalf("bad action error should list the actions: %v", err)
	}
	// ipmitool's word: the error names the actions it could mean.
	if _, err := ParseAction("identify"); err == nil || !strings.Contains(err.Error(), "did you mean identify-on or identify-off or identify-status?") {
		t.Errorf("identify: %v", err)
	}
}

func TestGate(t *testing.T) {
	since := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		cs     store.ChannelState
		ok     bool
		inText []string
	}{
		{store.ChannelState{State: state.Connectable}, true, nil},
		{store.ChannelState{State: state.Connectable, Reason: state.ReasonBusy}, false, []string{"Connectable (busy)", "session slot"}},
		{store.ChannelState{}, false, []string{"Unknown", "not been checked"}},
		{store.ChannelState{State: state.NotResponding, Reason: state.ReasonSilent, Since: since}, false,
			[]string{"NotResponding (silent) since 2026-11-21T09:00:00Z", "UDP 623"}},
		{store.ChannelState{State: state.NotAuthenticated, Reason: state.ReasonWrongPassword, Since: since}, false,
			[]string{"NotAuthenticated (wrong_password)", "password"}},
		{store.ChannelState{State: state.Invalid, Reason: state.ReasonGUIDMismatch, Since: since}, false, []string{"Invalid", "adopt"}},
	}
	for _, tt := range tests {
		err := Gate("node-1", tt.cs)
		if (err == nil) != tt.ok {
			t.Fatalf("%+v: err %v", tt.cs, err)
		}
		if err == nil {
			continue
		}
		var re *RefusedError
		if !errors.Is(err, ErrRefused) || !errors.As(err, &re) || re.Machine != "node-1" {
			t.Fatalf("not a RefusedError: %v", err)
		}
		for _, s := range tt.inText {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%q lacks %q", err, s)
			}
		}
	}
}

func TestRunStaggers(t *testing.T) {
	// In a synctest bubble: each action's 5 ms and the stagger's interval
	// run on the bubble's clock.
	synctest.Test(t, func(t *testing.T) {
		var running, maxRunning atomic.Int32
		var mu sync.Mutex
		var order []string
		items := make([]Item, 7)
		for i := range items {
			name := fmt.Sprintf("m%d", i)
			items[i] = Item{Machine: name, Do: func(ctx context.Context) (string, error) {
				n := running.Add(1)
				for {
					m := maxRunning.Load()
					if n <= m || maxRunning.CompareAndSwap(m, n) {
						break
					}
				}
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // the bubble's clock, not a wait
				running.Add(-1)
				switch i {
				case 3:
					return "", &RefusedError{Machine: name, State: state.NotResponding}
				case 5:
					return "", errors.New("boom")
				}
				return "off", nil
			}}
		}
		var progress []Result
		res := Run(context.Background(), Off, items, Stagger{Batch: 3, Interval: 20 * time.Millisecond}, func(r Result) { progress = append(progress, r) })
		if len(progress) != 7 || len(res) != 7 {
			t.Fatalf("progress %d results %d", len(progress), len(res))
		}
		if maxRunning.Load() > 3 {
			t.Fatalf("%d ran at once, batch is 3", maxRunning.Load())
		}
		wantBatch := []int{1, 1, 1, 2, 2, 2, 3}
		for i, r := range res {
			if r.Machine != fmt.Sprintf("m%d", i) || r.Batch != wantBatch[i] {
				t.Fatalf("result %d: %+v", i, r)
			}
		}
		if res[3].Result != ResultRefused || res[5].Result != ResultFailed || res[0].Result != ResultOK || res[0].Power != "off" {
			t.Fatalf("outcomes: %+v", res)
		}
		// Batches never overlap: every m0..m2 starts before any of m3..m5.
		pos := map[string]int{}
		for i, n := range order {
			pos[n] = i
		}
		for _, a := range []string{"m0", "m1", "m2"} {
			for _, b := range []string{"m3", "m4", "m5", "m6"} {
				if pos[a] > pos[b] {
					t.Fatalf("batch order broken: %v", order)
				}
			}
		}
	})
}

func TestRunCancelStopsLaterBatches(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var started atomic.Int32
	items := make([]Item, 4)
	for i := range items {
		items[i] = Item{Machine: fmt.Sprint(i), Do: func(context.Context) (string, error) {
			started.Add(1)
			cancel()
			return "on", nil
		}}
	}
	res := Run(ctx, On, items, Stagger{Batch: 1, Interval: time.Hour}, nil)
	if started.Load() != 1 {
		t.Fatalf("%d started after cancel", started.Load())
	}
	for _, r := range res[1:] {
		if r.Result != ResultFailed || !strings.Contains(r.Message, "not started") {
			t.Fatalf("%+v", r)
		}
	}
}

type causeErr struct{}

func (causeErr) Error() string { return "soft-off ignored; still on" }
func (causeErr) Cause() string { return "still_on" }

// An Op's detail reaches the result, and an error that names its cause
// gives Result.Cause; old results without them marshal as before.
func TestRunOpDetailAndCause(t *testing.T) {
	items := []Item{
		{Machine: "a", Op: func(context.Context) (Outcome, error) {
			return Outcome{Power: "off", Detail: "off after soft-off (1s)"}, nil
		}},
		{Machine: "b", Op: func(context.Context) (Outcome, error) {
			return Outcome{Power: "on", Detail: "agent os-shutdown sent"}, fmt.Errorf("b: %w", causeErr{})
		}},
		{Machine: "c", Do: func(context.Context) (string, error) { return "on", nil }},
	}
	res := Run(context.Background(), SoftOff, items, Stagger{}, nil)
	if r := res[0]; r.Result != ResultOK || r.Power != "off" || r.Detail != "off after soft-off (1s)" || r.Cause != "" {
		t.Fatalf("a: %+v", r)
	}
	if r := res[1]; r.Result != ResultFailed || r.Power != "on" || r.Cause != "still_on" || r.Detail == "" || !strings.Contains(r.Message, "still on") {
		t.Fatalf("b: %+v", r)
	}
	b, _ := json.Marshal(res[2])
	if strings.Contains(string(b), "detail") || strings.Contains(string(b), "cause") {
		t.Fatalf("c marshals %s", b)
	}
}
