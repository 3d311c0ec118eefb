package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/state"
)

func openB(b *testing.B) *DB {
	b.Helper()
	db, err := Open(context.Background(), Options{DSN: filepath.Join(b.TempDir(), "bench.db"), Box: testBox})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// fillStates writes n machines, accounts and channel states with raw SQL in
// one transaction (fast set-up).
func fillStates(b *testing.B, db *DB, n int) {
	b.Helper()
	ctx := context.Background()
	t0 := ts(time.Now())
	err := db.tx(ctx, func(x q) error {
		for i := 1; i <= n; i++ {
			if _, err := x.exec(ctx, "INSERT INTO machines (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)", i, fmt.Sprintf("m%05d", i), t0, t0); err != nil {
				return err
			}
			if _, err := x.exec(ctx, `INSERT INTO accounts (id, machine_id, protocol, address, port, privilege, credentials_changed_at, created_at, updated_at)
VALUES (?, ?, 'ipmi', ?, 623, 'administrator', ?, ?, ?)`, i, i, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), t0, t0, t0); err != nil {
				return err
			}
			conds := ""
			if i%10 == 0 {
				conds = `["Degraded"]`
			}
			if _, err := x.exec(ctx, `INSERT INTO channel_states (account_id, state, reason, conditions, message, since, checked_at, guid, power, evidence)
VALUES (?, 'Connectable', '', ?, 'ok', ?, ?, '4c4c4544-0031-3210-8052-b4c04f4e3432', 'on', '{"rtt_ms":2}')`, i, conds, t0, t0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSaveState: one state change (upsert + transition), committed
// durably (WAL, synchronous=FULL).
func BenchmarkSaveState(b *testing.B) {
	db := openB(b)
	fillStates(b, db, 1000)
	ctx := context.Background()
	ev := json.RawMessage(`{"rtt_ms":2,"attempts":1}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := int64(i%1000 + 1)
		now := time.Now()
		s := ChannelState{AccountID: id, State: state.NotResponding, Reason: state.ReasonSilent, Since: now, CheckedAt: now, Evidence: ev}
		if err := db.SaveState(ctx, s, &Transition{From: state.Connectable, Reason: state.ReasonSilent, Evidence: ev}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStates50k: list 50,000 channel states.
func BenchmarkStates50k(b *testing.B) {
	db := openB(b)
	fillStates(b, db, 50_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ss, err := db.States(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(ss) != 50_000 {
			b.Fatalf("%d states", len(ss))
		}
	}
}
