package sqlstore

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAgentsEnrollRenewRevoke(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		at := time.Unix(1_800_000_000, 0).UTC()
		mustNil(t, db.AddJoinToken(ctx, []byte("tok-1"), at.Add(time.Hour)))
		a := Agent{Name: "web-1", Version: "1.0", Capabilities: []string{"heartbeat", "bmc-check"}, Address: "127.0.0.1"}
		c := AgentCert{Serial: "01", Fingerprint: "fp-agent-1", IssuedAt: at, NotAfter: at.Add(365 * 24 * time.Hour)}
		mustNil(t, db.EnrollAgent(ctx, []byte("tok-1"), at, &a, &c))
		if err := db.EnrollAgent(ctx, []byte("tok-1"), at, &Agent{Name: "web-2"}, &AgentCert{Serial: "02", Fingerprint: "x"}); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("a spent token: %v", err)
		}
		got, err := db.AgentCertByFingerprint(ctx, "fp-agent-1")
		if err != nil || got.Kind != CertAgent || got.AgentID != a.ID {
			t.Fatalf("enrolled certificate: %+v, %v", got, err)
		}
		// A renewal and a link certificate.
		mustNil(t, db.AddAgentCert(ctx, AgentCert{Serial: "03", AgentID: a.ID, Fingerprint: "fp-link-1", IssuedAt: at, NotAfter: at.Add(time.Hour), Kind: CertLink}))
		mustNil(t, db.AddAgentCert(ctx, AgentCert{Serial: "04", AgentID: a.ID, Fingerprint: "fp-agent-2", IssuedAt: at, NotAfter: at.Add(time.Hour), Kind: CertAgent}))
		if got, _ := db.AgentCertByFingerprint(ctx, "fp-link-1"); got.Kind != CertLink {
			t.Fatalf("link certificate kind %q", got.Kind)
		}
		var fe *FieldError
		if err := db.AddAgentCert(ctx, AgentCert{Serial: "05", AgentID: a.ID, Fingerprint: "fp-x", Kind: "server"}); !errors.As(err, &fe) || fe.Field != "kind" {
			t.Fatalf("bad kind: %v", err)
		}
		if err := db.AddAgentCert(ctx, AgentCert{Serial: "06", AgentID: 999, Fingerprint: "fp-y", Kind: CertAgent}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		// Revocation covers every certificate, and a revoked agent gets no new one.
		mustNil(t, db.RevokeAgent(ctx, a.ID, at.Add(time.Minute)))
		for _, fp := range []string{"fp-agent-1", "fp-link-1", "fp-agent-2"} {
			if got, _ := db.AgentCertByFingerprint(ctx, fp); got.RevokedAt.IsZero() {
				t.Fatalf("%s not revoked", fp)
			}
		}
		if err := db.AddAgentCert(ctx, AgentCert{Serial: "07", AgentID: a.ID, Fingerprint: "fp-z", Kind: CertAgent}); !errors.Is(err, ErrConflict) {
			t.Fatalf("renewal of a revoked agent: %v", err)
		}

		// A name whose certificate is still valid cannot be taken; once
		// it has expired, a fresh token enrolls it again, same node ID.
		mustNil(t, db.AddJoinToken(ctx, []byte("tok-2"), at.Add(time.Hour)))
		b := Agent{Name: "db-1"}
		mustNil(t, db.EnrollAgent(ctx, []byte("tok-2"), at, &b, &AgentCert{Serial: "10", Fingerprint: "fp-db-1", IssuedAt: at, NotAfter: at.Add(24 * time.Hour)}))
		mustNil(t, db.AddJoinToken(ctx, []byte("tok-3"), at.Add(72*time.Hour)))
		if err := db.EnrollAgent(ctx, []byte("tok-3"), at.Add(time.Hour), &Agent{Name: "db-1"}, &AgentCert{Serial: "11", Fingerprint: "fp-db-2"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("enrolling over a valid certificate: %v", err)
		}
		b2 := Agent{Name: "db-1"}
		later := at.Add(48 * time.Hour)
		mustNil(t, db.EnrollAgent(ctx, []byte("tok-3"), later, &b2, &AgentCert{Serial: "12", Fingerprint: "fp-db-3", IssuedAt: later, NotAfter: later.Add(24 * time.Hour)}))
		if b2.ID != b.ID {
			t.Fatalf("re-enrolled as node %d, was %d", b2.ID, b.ID)
		}
		if got, _ := db.AgentCertByFingerprint(ctx, "fp-db-1"); got.RevokedAt.IsZero() {
			t.Fatal("the expired certificate was not revoked on re-enrollment")
		}
	})
}

func TestAgentManagers(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		t0 := time.Unix(1_800_000_000, 0)
		mustNil(t, db.TouchManager(ctx, "10.0.0.2:8624", t0))
		mustNil(t, db.TouchManager(ctx, "10.0.0.1:8624", t0.Add(-time.Hour)))
		mustNil(t, db.TouchManager(ctx, "10.0.0.1:8624", t0.Add(time.Second))) // refreshed
		mustNil(t, db.TouchManager(ctx, "10.0.0.3:8624", t0.Add(-time.Hour)))  // stale
		got, err := db.AgentManagers(ctx, t0.Add(-time.Minute))
		if err != nil || !slices.Equal(got, []string{"10.0.0.1:8624", "10.0.0.2:8624"}) {
			t.Fatalf("live managers: %v, %v", got, err)
		}
	})
}
