package sqlstore

import (
	"errors"
	"strings"
	"testing"
)

func TestCertPins(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		addMachine(t, db, "m1", "10.0.0.1")
		if fp, err := db.CertPin(ctx, "m1"); err != nil || fp != "" {
			t.Fatalf("no pin yet: %q, %v", fp, err)
		}
		a, b := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
		mustNil(t, db.PinCert(ctx, "m1", strings.ToUpper(a)))
		if fp, err := db.CertPin(ctx, "m1"); err != nil || fp != a {
			t.Fatalf("pin: %q, %v", fp, err)
		}
		mustNil(t, db.PinCert(ctx, "m1", b)) // an admin accepts a new certificate
		if fp, _ := db.CertPin(ctx, "m1"); fp != b {
			t.Fatalf("re-pin: %q", fp)
		}
		if err := db.PinCert(ctx, "nope", a); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown machine: %v", err)
		}
		var fe *FieldError
		if err := db.PinCert(ctx, "m1", "xyz"); !errors.As(err, &fe) {
			t.Fatalf("bad fingerprint: %v", err)
		}
		mustNil(t, db.DeleteMachine(ctx, "m1"))
	})
}
