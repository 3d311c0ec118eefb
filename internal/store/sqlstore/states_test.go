package sqlstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/state"
)

func TestStates(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		_, a1 := addMachine(t, db, "m1", "10.0.0.1")
		_, a2 := addMachine(t, db, "m2", "10.0.0.2")
		t0 := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
		s1 := ChannelState{AccountID: a1.ID, State: state.Connectable, Conditions: []state.Condition{state.Busy, state.Insecure},
			Message: "ok", Since: t0, CheckedAt: t0.Add(time.Minute), GUID: "4c4c4544-0031-3210-8052-b4c04f4e3432", Power: "on",
			Evidence: json.RawMessage(`{"rtt_ms":3}`)}
		mustNil(t, db.SaveState(ctx, s1, nil))
		got, err := db.State(ctx, a1.ID)
		mustNil(t, err)
		if !reflect.DeepEqual(got, s1) {
			t.Fatalf("State = %+v\nwant    %+v", got, s1)
		}
		_, err = db.State(ctx, a2.ID)
		wantFieldErr(t, err, "account", ErrNotFound)

		// Upsert with a transition.
		s1b := ChannelState{AccountID: a1.ID, State: state.NotResponding, Reason: state.ReasonSilent, Since: t0.Add(time.Hour), CheckedAt: t0.Add(time.Hour)}
		tr := &Transition{From: state.Connectable, Reason: state.ReasonSilent, Message: "silent", Evidence: json.RawMessage(`[1,2]`)}
		mustNil(t, db.SaveState(ctx, s1b, tr))
		if tr.ID == 0 || tr.AccountID != a1.ID || tr.To != state.NotResponding || !tr.At.Equal(s1b.CheckedAt) {
			t.Fatalf("transition defaults: %+v", tr)
		}
		s2 := ChannelState{AccountID: a2.ID, State: state.Unknown}
		mustNil(t, db.SaveState(ctx, s2, nil))
		all, err := db.States(ctx)
		mustNil(t, err)
		if len(all) != 2 || !reflect.DeepEqual(all[0], s1b) || !reflect.DeepEqual(all[1], s2) {
			t.Fatalf("States = %+v", all)
		}
		h, err := db.History(ctx, a1.ID, 0, 0)
		mustNil(t, err)
		want := *tr
		want.Machine = "m1"
		if len(h) != 1 || !reflect.DeepEqual(h[0], want) {
			t.Fatalf("History = %+v\nwant      %+v", h, want)
		}

		// Refusals.
		wantFieldErr(t, db.SaveState(ctx, ChannelState{AccountID: 9999, State: state.Unknown}, nil), "account", ErrNotFound)
		wantFieldErr(t, db.SaveState(ctx, ChannelState{AccountID: 9999, State: state.Unknown}, &Transition{}), "account", ErrNotFound)
		wantFieldErr(t, db.SaveState(ctx, ChannelState{State: state.Unknown}, nil), "account_id", nil)
		wantFieldErr(t, db.SaveState(ctx, ChannelState{AccountID: a1.ID}, nil), "state", nil)
		wantFieldErr(t, db.SaveState(ctx, ChannelState{AccountID: a1.ID, State: "x", Evidence: json.RawMessage("{")}, nil), "evidence", nil)
		wantFieldErr(t, db.SaveState(ctx, ChannelState{AccountID: a1.ID, State: "x"}, &Transition{AccountID: a2.ID}), "account_id", nil)
		if n := count(t, db, "transitions"); n != 1 {
			t.Fatalf("%d transitions after refusals", n)
		}
	})
}

func TestHistoryOrderAndPaging(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		m, a := addMachine(t, db, "m", "10.0.0.1")
		b := Account{MachineID: m.ID, Protocol: "redfish", Address: "10.0.0.1"}
		mustNil(t, db.AddAccount(ctx, &b))
		_, other := addMachine(t, db, "other", "10.0.0.2")
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		var ids []int64 // of account a, oldest first
		var all []int64 // of machine m, oldest first
		for i := 0; i < 250; i++ {
			acct := a.ID
			if i%5 == 4 {
				acct = b.ID
			}
			if i%7 == 0 {
				mustNil(t, db.SaveState(ctx, ChannelState{AccountID: other.ID, State: "Unknown"}, &Transition{}))
			}
			tr := &Transition{At: t0.Add(time.Duration(i) * time.Second), Message: fmt.Sprint(i), From: "Unknown", To: "Connectable"}
			mustNil(t, db.SaveState(ctx, ChannelState{AccountID: acct, State: "Connectable"}, tr))
			if acct == a.ID {
				ids = append(ids, tr.ID)
			}
			all = append(all, tr.ID)
		}
		// Walk account a's history in pages of 30, newest first.
		var walked []int64
		before := int64(0)
		for pages := 0; pages < 100; pages++ {
			h, err := db.History(ctx, a.ID, before, 30)
			mustNil(t, err)
			if len(h) == 0 {
				break
			}
			for _, tr := range h {
				if tr.AccountID != a.ID || tr.Machine != "m" {
					t.Fatalf("foreign transition in history: %+v", tr)
				}
				walked = append(walked, tr.ID)
			}
			before = h[len(h)-1].ID
		}
		if len(walked) != len(ids) {
			t.Fatalf("walked %d transitions, want %d", len(walked), len(ids))
		}
		for i := range walked {
			if walked[i] != ids[len(ids)-1-i] {
				t.Fatalf("history order broken at %d: %d, want %d", i, walked[i], ids[len(ids)-1-i])
			}
		}
		// Default limit 100.
		if h, _ := db.History(ctx, a.ID, 0, 0); len(h) != 100 || h[0].ID != ids[len(ids)-1] {
			t.Fatalf("default page: %d rows", len(h))
		}
		// Machine history merges both accounts.
		h, err := db.HistoryOfMachine(ctx, m.ID, all[len(all)-1], 10)
		mustNil(t, err)
		if len(h) != 10 {
			t.Fatalf("HistoryOfMachine: %d rows", len(h))
		}
		for i, tr := range h {
			if tr.ID != all[len(all)-2-i] {
				t.Fatalf("HistoryOfMachine[%d] = %d, want %d", i, tr.ID, all[len(all)-2-i])
			}
		}
		if h, _ := db.History(ctx, 9999, 0, 0); len(h) != 0 {
			t.Fatalf("history of unknown account: %v", h)
		}
	})
}

func TestEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		add := func(code, source string, at time.Time, msg string, dedup time.Duration) Event {
			t.Helper()
			e := Event{Code: code, Severity: SeverityWarning, Source: source, At: at, Message: msg, Data: json.RawMessage(`{"m":"` + msg + `"}`)}
			mustNil(t, db.AddEvent(ctx, &e, dedup))
			return e
		}
		e1 := add("oob.state_changed", "m1", t0, "first", time.Minute)
		if e1.Count != 1 || !e1.LastAt.Equal(t0) {
			t.Fatalf("new event: %+v", e1)
		}
		// Within the window: merged.
		e2 := add("oob.state_changed", "m1", t0.Add(50*time.Second), "second", time.Minute)
		if e2.ID != e1.ID || e2.Count != 2 || !e2.LastAt.Equal(t0.Add(50*time.Second)) || !e2.At.Equal(t0) {
			t.Fatalf("merged event: %+v", e2)
		}
		// The window slides with LastAt.
		e3 := add("oob.state_changed", "m1", t0.Add(100*time.Second), "third", time.Minute)
		if e3.ID != e1.ID || e3.Count != 3 {
			t.Fatalf("second merge: %+v", e3)
		}
		// Outside the window, another source or code, or dedup 0: new events.
		e4 := add("oob.state_changed", "m1", t0.Add(10*time.Minute), "late", time.Minute)
		e5 := add("oob.state_changed", "m2", t0.Add(10*time.Minute), "other source", time.Minute)
		e6 := add("oob.flood", "m1", t0.Add(10*time.Minute), "other code", time.Minute)
		e7 := add("oob.flood", "m1", t0.Add(10*time.Minute), "no dedup", 0)
		ids := map[int64]bool{e1.ID: true}
		for _, e := range []Event{e4, e5, e6, e7} {
			if ids[e.ID] || e.Count != 1 {
				t.Fatalf("event not new: %+v", e)
			}
			ids[e.ID] = true
		}

		evs, err := db.Events(ctx, time.Time{}, "", 0)
		mustNil(t, err)
		if len(evs) != 5 {
			t.Fatalf("Events: %d, want 5", len(evs))
		}
		if evs[len(evs)-1].ID != e1.ID || evs[len(evs)-1].Message != "third" || evs[len(evs)-1].Count != 3 ||
			string(evs[len(evs)-1].Data) != `{"m":"third"}` || evs[len(evs)-1].Severity != SeverityWarning {
			t.Fatalf("oldest event: %+v", evs[len(evs)-1])
		}
		if evs[0].ID != e7.ID {
			t.Fatalf("newest first: got %d first, want %d", evs[0].ID, e7.ID)
		}
		if evs, _ := db.Events(ctx, t0.Add(5*time.Minute), "oob.flood", 0); len(evs) != 2 {
			t.Fatalf("Events(since, code) = %d", len(evs))
		}
		if evs, _ := db.Events(ctx, time.Time{}, "", 2); len(evs) != 2 {
			t.Fatalf("Events(limit 2) = %d", len(evs))
		}
		n, err := db.PruneEvents(ctx, t0.Add(5*time.Minute))
		mustNil(t, err)
		if n != 1 {
			t.Fatalf("PruneEvents = %d, want 1", n)
		}
		if evs, _ := db.Events(ctx, time.Time{}, "", 0); len(evs) != 4 {
			t.Fatalf("after prune: %d", len(evs))
		}
		// Defaults and refusals.
		e := Event{Code: "x"}
		mustNil(t, db.AddEvent(ctx, &e, 0))
		if e.Severity != SeverityInfo || e.At.IsZero() || e.Count != 1 {
			t.Fatalf("defaults: %+v", e)
		}
		wantFieldErr(t, db.AddEvent(ctx, &Event{}, 0), "code", nil)
		wantFieldErr(t, db.AddEvent(ctx, &Event{Code: "x", Severity: "fatal"}, 0), "severity", nil)
		wantFieldErr(t, db.AddEvent(ctx, &Event{Code: "x", Data: json.RawMessage("nope")}, 0), "data", nil)
	})
}

func TestConcurrentEventDedup(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		const n = 16
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.AddEvent(ctx, &Event{Code: "flood", Source: "m"}, time.Hour)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			mustNil(t, err)
		}
		evs, err := db.Events(ctx, time.Time{}, "flood", 0)
		mustNil(t, err)
		if len(evs) != 1 || evs[0].Count != n {
			t.Fatalf("concurrent duplicates: %+v", evs)
		}
	})
}

func TestAudit(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		var ids []int64
		for i, target := range []string{"m1", "m2", "m1", ""} {
			a := AuditEntry{Actor: "cli", Action: "power.off", Target: target, Detail: fmt.Sprint(i), Result: "ok"}
			if i == 2 {
				a.Result, a.Error = "refused", "NotResponding since 10:00"
			}
			mustNil(t, db.Audit(ctx, &a))
			if a.ID == 0 || a.At.IsZero() {
				t.Fatalf("Audit did not set ID/At: %+v", a)
			}
			ids = append(ids, a.ID)
		}
		all, err := db.AuditLog(ctx, "", 0)
		mustNil(t, err)
		if len(all) != 4 || all[0].ID != ids[3] || all[3].ID != ids[0] {
			t.Fatalf("AuditLog: %+v", all)
		}
		m1, err := db.AuditLog(ctx, "m1", 0)
		mustNil(t, err)
		if len(m1) != 2 || m1[0].Result != "refused" || m1[0].Error == "" || m1[1].Detail != "0" {
			t.Fatalf("AuditLog(m1): %+v", m1)
		}
		if l, _ := db.AuditLog(ctx, "", 1); len(l) != 1 {
			t.Fatalf("limit: %d", len(l))
		}
		wantFieldErr(t, db.Audit(ctx, &AuditEntry{Action: "x", Result: "ok"}), "actor", nil)
		wantFieldErr(t, db.Audit(ctx, &AuditEntry{Actor: "cli", Result: "ok"}), "action", nil)
		wantFieldErr(t, db.Audit(ctx, &AuditEntry{Actor: "cli", Action: "x", Result: "maybe"}), "result", nil)
	})
}

func TestTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		a := Token{Name: "ci", Role: RoleOperator, Hash: hash("a")}
		mustNil(t, db.AddToken(ctx, &a))
		b := Token{Name: "admin", Role: RoleAdmin, Hash: hash("b")}
		mustNil(t, db.AddToken(ctx, &b))
		if a.ID == 0 || a.CreatedAt.IsZero() {
			t.Fatalf("AddToken: %+v", a)
		}
		got, err := db.TokenByHash(ctx, hash("a"))
		mustNil(t, err)
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("TokenByHash = %+v, want %+v", got, a)
		}
		_, err = db.TokenByHash(ctx, hash("zzz"))
		wantFieldErr(t, err, "token", ErrNotFound)
		mustNil(t, db.RevokeToken(ctx, "ci"))
		if got, _ := db.TokenByHash(ctx, hash("a")); !got.Revoked {
			t.Fatal("revoked token not marked")
		}
		wantFieldErr(t, db.RevokeToken(ctx, "nope"), "token", ErrNotFound)
		all, err := db.Tokens(ctx)
		mustNil(t, err)
		if len(all) != 2 || all[0].Name != "ci" || !all[0].Revoked || all[1].Revoked {
			t.Fatalf("Tokens = %+v", all)
		}
		wantFieldErr(t, db.AddToken(ctx, &Token{Name: "x", Role: "root", Hash: hash("x")}), "role", nil)
		wantFieldErr(t, db.AddToken(ctx, &Token{Name: "x", Role: RoleViewer, Hash: []byte("short")}), "hash", nil)
		wantFieldErr(t, db.AddToken(ctx, &Token{Role: RoleViewer, Hash: hash("x")}), "name", nil)
	})
}
