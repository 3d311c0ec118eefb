package state

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func obs(s OOB, r Reason, i int, conds ...Condition) Observed {
	return Observed{State: s, Reason: r, Conditions: conds, At: t0.Add(time.Duration(i) * time.Minute)}
}

// feed runs observations through a fresh channel and returns the final
// channel and the changes in order.
func feed(d Damping, os ...Observed) (Channel, []Change) {
	var c Channel
	var ch []Change
	for _, o := range os {
		var k Change
		c, k, _ = c.Observe(o, d)
		ch = append(ch, k)
	}
	return c, ch
}

func TestObserveTable(t *testing.T) {
	C, NR, NA, I := Connectable, NotResponding, NotAuthenticated, Invalid
	type step struct {
		s    OOB
		r    Reason
		want Change
		st   OOB // declared state after
	}
	tests := []struct {
		name  string
		d     Damping
		steps []step
	}{
		{"first observation declared at once", DefaultDamping, []step{{C, "", Declared, C}}},
		{"first NotResponding declared at once", DefaultDamping, []step{{NR, ReasonSilent, Declared, NR}}},
		{"one blip is damped", DefaultDamping, []step{
			{C, "", Declared, C}, {NR, ReasonSilent, NoChange, C}, {C, "", NoChange, C}}},
		{"two in a row declare", DefaultDamping, []step{
			{C, "", Declared, C}, {NR, ReasonSilent, NoChange, C}, {NR, ReasonSilent, Declared, NR}}},
		{"alternating never declares", DefaultDamping, []step{
			{C, "", Declared, C}, {NR, ReasonSilent, NoChange, C}, {C, "", NoChange, C},
			{NR, ReasonSilent, NoChange, C}, {C, "", NoChange, C}}},
		{"pending resets on a different state", Damping{3}, []step{
			{C, "", Declared, C}, {NR, ReasonSilent, NoChange, C}, {NR, ReasonSilent, NoChange, C},
			{C, "", NoChange, C}, {NR, ReasonSilent, NoChange, C}, {NR, ReasonSilent, NoChange, C},
			{NR, ReasonSilent, Declared, NR}}},
		{"Invalid at once", DefaultDamping, []step{{C, "", Declared, C}, {I, ReasonGUIDMismatch, Declared, I}}},
		{"NotAuthenticated at once", DefaultDamping, []step{{C, "", Declared, C}, {NA, ReasonWrongPassword, Declared, NA}}},
		{"recovery from Invalid is damped", DefaultDamping, []step{
			{I, ReasonGUIDMismatch, Declared, I}, {C, "", NoChange, I}, {C, "", Declared, C}}},
		{"reason change is an update", DefaultDamping, []step{
			{NR, ReasonSilent, Declared, NR}, {NR, ReasonPortRefused, Updated, NR}, {NR, ReasonPortRefused, NoChange, NR}}},
		{"damping 1 is immediate", Damping{1}, []step{
			{C, "", Declared, C}, {NR, ReasonSilent, Declared, NR}, {C, "", Declared, C}}},
		{"damping 0 means 1", Damping{0}, []step{{C, "", Declared, C}, {NR, ReasonSilent, Declared, NR}}},
		{"pending state switches", Damping{2}, []step{
			{C, "", Declared, C}, {NR, ReasonSilent, NoChange, C}, {I, ReasonGUIDMismatch, Declared, I}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Channel
			for i, s := range tt.steps {
				var k Change
				var tr Transition
				prev := c.State
				if prev == "" {
					prev = Unknown
				}
				c, k, tr = c.Observe(obs(s.s, s.r, i), tt.d)
				if k != tt.steps[i].want || c.State != s.st {
					t.Fatalf("step %d (%s/%s): change %v state %s; want %v %s", i, s.s, s.r, k, c.State, s.want, s.st)
				}
				if k == Declared {
					if tr.From != prev || tr.To != s.s || tr.Reason != s.r || !tr.At.Equal(obs(s.s, s.r, i).At) {
						t.Fatalf("step %d: transition %+v", i, tr)
					}
					if !c.Since.Equal(tr.At) {
						t.Fatalf("step %d: since %v, want %v", i, c.Since, tr.At)
					}
				}
			}
		})
	}
}

// TestObserveExhaustive drives every pair of declared/observed states under
// damping 1..3 and checks the invariants.
func TestObserveExhaustive(t *testing.T) {
	all := []OOB{Unknown, Connectable, NotResponding, NotAuthenticated, Invalid}
	for _, n := range []int{1, 2, 3} {
		d := Damping{n}
		for _, from := range all {
			for _, to := range all {
				t.Run(fmt.Sprintf("%d/%s->%s", n, from, to), func(t *testing.T) {
					c := Channel{State: from, Since: t0}
					var declaredAt = -1
					for i := 1; i <= n+1; i++ {
						var k Change
						c, k, _ = c.Observe(obs(to, "", i), d)
						if k == Declared {
							declaredAt = i
							break
						}
						if from == to && k != NoChange {
							t.Fatalf("same state gave %v", k)
						}
					}
					want := n
					switch {
					case from == to:
						want = -1
					case from == Unknown, to == Invalid, to == NotAuthenticated:
						want = 1
					}
					if declaredAt != want {
						t.Fatalf("declared after %d observations, want %d", declaredAt, want)
					}
					if want > 0 && (c.State != to || c.Pending != "" || c.PendingCount != 0) {
						t.Fatalf("after declaring: %+v", c)
					}
				})
			}
		}
	}
}

func TestConditionsUpdate(t *testing.T) {
	c, ch := feed(DefaultDamping,
		obs(Connectable, "", 0),
		obs(Connectable, ReasonBusy, 1, Busy),
		obs(Connectable, ReasonBusy, 2, Busy),
		obs(Connectable, "", 3, Degraded))
	want := []Change{Declared, Updated, NoChange, Updated}
	for i := range want {
		if ch[i] != want[i] {
			t.Fatalf("changes %v, want %v", ch, want)
		}
	}
	if len(c.Conditions) != 1 || c.Conditions[0] != Degraded || !c.Since.Equal(t0) {
		t.Fatalf("channel %+v", c)
	}
}

func TestStreak(t *testing.T) {
	c, _ := feed(DefaultDamping,
		obs(Connectable, "", 0), obs(NotResponding, "", 1), obs(NotResponding, "", 2), obs(NotResponding, "", 3))
	if c.State != NotResponding || c.Streak != 3 {
		t.Fatalf("%+v", c)
	}
	c, _, _ = c.Observe(obs(Connectable, "", 4), DefaultDamping)
	if c.Streak != 1 || c.Observing() != Connectable || c.State != NotResponding {
		t.Fatalf("%+v", c)
	}
}

func TestScheduleNext(t *testing.T) {
	s := Schedule{Interval: time.Minute, Confirm: 10 * time.Second, MaxBackoff: 10 * time.Minute, AuthRetry: 10 * time.Minute}
	tests := []struct {
		name string
		c    Channel
		want time.Duration
	}{
		{"unknown", Channel{}, time.Minute},
		{"connectable", Channel{State: Connectable, Streak: 50}, time.Minute},
		{"pending confirm", Channel{State: Connectable, Pending: NotResponding, PendingCount: 1, Streak: 1}, 10 * time.Second},
		{"just declared NR", Channel{State: NotResponding, Streak: 1}, time.Minute},
		{"NR second", Channel{State: NotResponding, Streak: 2}, 2 * time.Minute},
		{"NR third", Channel{State: NotResponding, Streak: 3}, 4 * time.Minute},
		{"NR capped", Channel{State: NotResponding, Streak: 60}, 10 * time.Minute},
		{"NR recovering is a pending confirm", Channel{State: NotResponding, Pending: Connectable, Streak: 1}, 10 * time.Second},
		{"not authenticated", Channel{State: NotAuthenticated, Streak: 1}, 10 * time.Minute},
		{"pending not authenticated still waits", Channel{State: Connectable, Pending: NotAuthenticated}, 10 * time.Minute},
		{"invalid", Channel{State: Invalid, Streak: 9}, time.Minute},
	}
	for _, tt := range tests {
		if got := s.Next(tt.c, 0.5); got != tt.want {
			t.Errorf("%s: Next = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Confirm longer than the interval is capped by it.
	s2 := s
	s2.Confirm = time.Hour
	if got := s2.Next(Channel{State: Connectable, Pending: Invalid}, 0.5); got != time.Minute {
		t.Errorf("confirm cap: %v", got)
	}
}

func TestScheduleJitterBounds(t *testing.T) {
	s := DefaultSchedule
	for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
		got := s.Next(Channel{State: Connectable}, r)
		if got < 54*time.Second || got > 66*time.Second {
			t.Errorf("r=%v: %v outside ±10%%", r, got)
		}
		a := s.Next(Channel{State: NotAuthenticated}, r)
		if a < s.AuthRetry || a > s.AuthRetry+s.AuthRetry/10 {
			t.Errorf("auth r=%v: %v", r, a)
		}
	}
	if s.Next(Channel{State: Connectable}, 0) == s.Next(Channel{State: Connectable}, 0.9) {
		t.Error("jitter has no effect")
	}
}

func TestAuthAttempt(t *testing.T) {
	s := DefaultSchedule
	refused := t0
	var zero time.Time
	tests := []struct {
		name                   string
		refused, cred, editTry time.Time
		now                    time.Time
		ok                     bool
		next                   time.Time
		edit                   bool
	}{
		{"never refused", zero, zero, zero, t0, true, t0, false},
		{"just refused", refused, zero, zero, t0.Add(time.Minute), false, t0.Add(10 * time.Minute), false},
		{"credentials edited after", refused, t0.Add(time.Second), zero, t0.Add(2 * time.Second), true, t0.Add(2 * time.Second), true},
		{"edited before", refused, t0.Add(-time.Second), zero, t0.Add(time.Minute), false, t0.Add(10 * time.Minute), false},
		{"after the retry interval", refused, zero, zero, t0.Add(10 * time.Minute), true, t0.Add(10 * time.Minute), false},
		// An edit already earned its immediate attempt (which was
		// refused): the next edit waits for the guard interval.
		{"second edit within the interval", refused, t0.Add(time.Second), t0.Add(-time.Second), t0.Add(2 * time.Second), false, t0.Add(10*time.Minute - time.Second), false},
		// The attempt an edit earned is not refused yet: this is it.
		{"the edit's attempt itself", refused, t0.Add(time.Second), t0.Add(time.Second), t0.Add(2 * time.Second), true, t0.Add(2 * time.Second), true},
		{"edit after the edit interval", t0.Add(9 * time.Minute), t0.Add(10 * time.Minute), t0, t0.Add(10*time.Minute + time.Second), true, t0.Add(10*time.Minute + time.Second), true},
	}
	for _, tt := range tests {
		ok, next, edit := s.AuthAttempt(tt.refused, tt.cred, tt.editTry, tt.now)
		if ok != tt.ok || !next.Equal(tt.next) || edit != tt.edit {
			t.Errorf("%s: %v %v %v, want %v %v %v", tt.name, ok, next, edit, tt.ok, tt.next, tt.edit)
		}
	}
	if ok, next := s.EditRetry(time.Time{}, t0); !ok || !next.Equal(t0) {
		t.Errorf("first edit: %v %v", ok, next)
	}
	if ok, next := s.EditRetry(t0, t0.Add(time.Minute)); ok || !next.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("edit a minute after an edit's attempt: %v %v", ok, next)
	}
}
