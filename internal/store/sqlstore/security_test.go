package sqlstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestSecurityReports(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		_, a1 := addMachine(t, db, "m1", "10.0.0.1")
		_, a2 := addMachine(t, db, "m2", "10.0.0.2")
		t0 := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
		r1 := SecurityReport{AccountID: a1.ID, AuditedAt: t0, AttemptedAt: t0,
			Findings: json.RawMessage(`[{"code":"cipher0_enabled"}]`), Report: json.RawMessage(`{"complete":true}`)}
		c1 := &SecurityChange{Findings: r1.Findings, Added: r1.Findings}
		mustNil(t, db.SaveSecurityReport(ctx, r1, c1))
		if c1.ID == 0 || c1.AccountID != a1.ID || !c1.At.Equal(t0) {
			t.Fatalf("change defaults: %+v", c1)
		}
		// An incomplete attempt later: the findings stay, the attempt and
		// its error are recorded; no change.
		r1b := r1
		r1b.AttemptedAt, r1b.Error = t0.Add(24*time.Hour), "silent"
		mustNil(t, db.SaveSecurityReport(ctx, r1b, nil))
		r2 := SecurityReport{AccountID: a2.ID, AuditedAt: t0, AttemptedAt: t0, Findings: json.RawMessage(`[]`)}
		mustNil(t, db.SaveSecurityReport(ctx, r2, &SecurityChange{Findings: r2.Findings}))

		all, err := db.SecurityReports(ctx, nil)
		mustNil(t, err)
		r1b.Machine, r2.Machine = "m1", "m2"
		if len(all) != 2 || !reflect.DeepEqual(all[0], r1b) || !reflect.DeepEqual(all[1], r2) {
			t.Fatalf("SecurityReports = %+v\nwant %+v, %+v", all, r1b, r2)
		}
		one, err := db.SecurityReports(ctx, []int64{a2.ID, 9999})
		mustNil(t, err)
		if len(one) != 1 || one[0].AccountID != a2.ID {
			t.Fatalf("SecurityReports(a2) = %+v", one)
		}
		h, err := db.SecurityHistory(ctx, a1.ID, 0)
		mustNil(t, err)
		want := *c1
		want.Machine = "m1"
		if len(h) != 1 || !reflect.DeepEqual(h[0], want) {
			t.Fatalf("SecurityHistory = %+v\nwant %+v", h, want)
		}

		// Refusals.
		wantFieldErr(t, db.SaveSecurityReport(ctx, SecurityReport{AccountID: 9999}, nil), "reference", ErrNotFound)
		wantFieldErr(t, db.SaveSecurityReport(ctx, SecurityReport{}, nil), "account_id", nil)
		wantFieldErr(t, db.SaveSecurityReport(ctx, SecurityReport{AccountID: a1.ID, Findings: json.RawMessage("[")}, nil), "findings", nil)
		wantFieldErr(t, db.SaveSecurityReport(ctx, SecurityReport{AccountID: a1.ID}, &SecurityChange{AccountID: a2.ID}), "account_id", nil)

		// Deleting the machine deletes its reports and history.
		mustNil(t, db.DeleteMachine(ctx, "m1"))
		all, err = db.SecurityReports(ctx, nil)
		mustNil(t, err)
		if len(all) != 1 || all[0].AccountID != a2.ID {
			t.Fatalf("after delete: %+v", all)
		}
		if h, _ := db.SecurityHistory(ctx, a1.ID, 0); len(h) != 0 {
			t.Fatalf("history after delete: %+v", h)
		}
	})
}
