package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AddJoinToken stores the hash of a one-time agent join token.
func (db *DB) AddJoinToken(ctx context.Context, hash []byte, expires time.Time) error {
	return db.tx(ctx, func(x q) error {
		_, err := x.exec(ctx, "INSERT INTO agent_join_tokens (hash, created_at, expires_at) VALUES (?, ?, ?)", hash, ts(now()), ts(expires))
		return mapErr(err, "join token")
	})
}

// EnrollAgent spends a join token and records the agent and its first
// certificate in one transaction. A name already enrolled is a conflict
// unless that agent is revoked or holds no valid agent certificate any
// more (all expired), in which case it is enrolled again under the same
// node ID (its old certificates are revoked).
func (db *DB) EnrollAgent(ctx context.Context, tokenHash []byte, at time.Time, a *Agent, c *AgentCert) error {
	return db.tx(ctx, func(x q) error {
		var id, exp, used int64
		err := x.row(ctx, "SELECT id, expires_at, used_at FROM agent_join_tokens WHERE hash = ?", tokenHash).Scan(&id, &exp, &used)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (used != 0 || exp <= ts(at))) {
			return ErrTokenInvalid
		} else if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		var old, revoked int64
		err = x.row(ctx, "SELECT id, revoked_at FROM agents WHERE name = ?", a.Name).Scan(&old, &revoked)
		if err == nil && revoked == 0 {
			// An agent whose agent certificates have all expired (or
			// been revoked) may enroll again: it cannot renew them.
			var valid int
			if err := x.row(ctx, "SELECT COUNT(*) FROM agent_certs WHERE agent_id = ? AND kind = 'agent' AND revoked_at = 0 AND not_after > ?",
				old, ts(at)).Scan(&valid); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if valid > 0 {
				return fmt.Errorf("agent %q: %w (its certificate is still valid: revoke it first to enroll it again)", a.Name, ErrConflict)
			}
			if _, err := x.exec(ctx, "UPDATE agent_certs SET revoked_at = ? WHERE agent_id = ? AND revoked_at = 0", ts(at), old); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
		switch {
		case err == nil:
			if _, err := x.exec(ctx, "UPDATE agents SET revoked_at = 0, enrolled_at = ?, version = ?, capabilities = ?, address = ? WHERE id = ?",
				ts(at), a.Version, strings.Join(a.Capabilities, ","), a.Address, old); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			a.ID = old
		case errors.Is(err, sql.ErrNoRows):
			if err := x.row(ctx, "INSERT INTO agents (name, enrolled_at, version, capabilities, address) VALUES (?, ?, ?, ?, ?) RETURNING id",
				a.Name, ts(at), a.Version, strings.Join(a.Capabilities, ","), a.Address).Scan(&a.ID); err != nil {
				return mapErr(err, "agent "+a.Name)
			}
		default:
			return fmt.Errorf("store: %w", err)
		}
		a.EnrolledAt, a.RevokedAt = at, time.Time{}
		c.AgentID = a.ID
		if _, err := x.exec(ctx, "INSERT INTO agent_certs (serial, agent_id, fingerprint, issued_at, not_after) VALUES (?, ?, ?, ?, ?)",
			c.Serial, c.AgentID, c.Fingerprint, ts(c.IssuedAt), ts(c.NotAfter)); err != nil {
			return mapErr(err, "agent certificate")
		}
		_, err = x.exec(ctx, "UPDATE agent_join_tokens SET used_at = ?, agent_id = ? WHERE id = ?", ts(at), a.ID, id)
		return err
	})
}

// AgentCertByFingerprint returns a certificate the CA issued (revoked ones
// too: callers check RevokedAt).
func (db *DB) AgentCertByFingerprint(ctx context.Context, fp string) (AgentCert, error) {
	var c AgentCert
	var issued, notAfter, revoked int64
	err := db.read().row(ctx, "SELECT serial, agent_id, fingerprint, issued_at, not_after, revoked_at, kind FROM agent_certs WHERE fingerprint = ?", fp).
		Scan(&c.Serial, &c.AgentID, &c.Fingerprint, &issued, &notAfter, &revoked, &c.Kind)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	} else if err != nil {
		return c, fmt.Errorf("store: %w", err)
	}
	c.IssuedAt, c.NotAfter, c.RevokedAt = fromTS(issued), fromTS(notAfter), fromTS(revoked)
	return c, nil
}

const agentCols = "id, name, enrolled_at, version, capabilities, address, last_seen, revoked_at"

func scanAgent(s scanner) (Agent, error) {
	var a Agent
	var enrolled, seen, revoked int64
	var caps string
	if err := s.Scan(&a.ID, &a.Name, &enrolled, &a.Version, &caps, &a.Address, &seen, &revoked); err != nil {
		return a, err
	}
	a.EnrolledAt, a.LastSeen, a.RevokedAt = fromTS(enrolled), fromTS(seen), fromTS(revoked)
	if caps != "" {
		a.Capabilities = strings.Split(caps, ",")
	}
	return a, nil
}

// Agents lists the enrolled agents by ID.
func (db *DB) Agents(ctx context.Context) ([]Agent, error) {
	rows, err := db.read().query(ctx, "SELECT "+agentCols+" FROM agents ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Agent returns one agent.
func (db *DB) Agent(ctx context.Context, id int64) (Agent, error) {
	a, err := scanAgent(db.read().row(ctx, "SELECT "+agentCols+" FROM agents WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	} else if err != nil {
		return a, fmt.Errorf("store: %w", err)
	}
	return a, nil
}

// AgentSeen records what an agent reported on connecting.
func (db *DB) AgentSeen(ctx context.Context, id int64, version string, caps []string, address string, at time.Time) error {
	return db.tx(ctx, func(x q) error {
		_, err := x.exec(ctx, "UPDATE agents SET version = ?, capabilities = ?, address = ?, last_seen = ? WHERE id = ?",
			version, strings.Join(caps, ","), address, ts(at), id)
		return err
	})
}

// RevokeAgent revokes an agent and every certificate issued to it.
func (db *DB) RevokeAgent(ctx context.Context, id int64, at time.Time) error {
	return db.tx(ctx, func(x q) error {
		res, err := x.exec(ctx, "UPDATE agents SET revoked_at = ? WHERE id = ? AND revoked_at = 0", ts(at), id)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := x.row(ctx, "SELECT 1 FROM agents WHERE id = ?", id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
		}
		_, err = x.exec(ctx, "UPDATE agent_certs SET revoked_at = ? WHERE agent_id = ? AND revoked_at = 0", ts(at), id)
		return err
	})
}

// AddAgentCert records a certificate issued to an enrolled agent (a
// renewal, or its link certificate). A revoked agent gets none.
func (db *DB) AddAgentCert(ctx context.Context, c AgentCert) error {
	if c.Kind != CertAgent && c.Kind != CertLink {
		return &FieldError{Record: "agent certificate", Field: "kind", Reason: "must be agent or link"}
	}
	return db.tx(ctx, func(x q) error {
		var revoked int64
		err := x.row(ctx, "SELECT revoked_at FROM agents WHERE id = ?", c.AgentID).Scan(&revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if revoked != 0 {
			return fmt.Errorf("agent %d is revoked: %w", c.AgentID, ErrConflict)
		}
		_, err = x.exec(ctx, "INSERT INTO agent_certs (serial, agent_id, fingerprint, issued_at, not_after, kind) VALUES (?, ?, ?, ?, ?, ?)",
			c.Serial, c.AgentID, c.Fingerprint, ts(c.IssuedAt), ts(c.NotAfter), c.Kind)
		return mapErr(err, "agent certificate")
	})
}

// TouchManager records that a manager advertising address (its agent
// listener, as agents should dial it) is alive at at.
func (db *DB) TouchManager(ctx context.Context, address string, at time.Time) error {
	return db.tx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO agent_managers (address, seen) VALUES (?, ?)
ON CONFLICT (address) DO UPDATE SET seen = excluded.seen`, address, ts(at))
		return err
	})
}

// AgentManagers lists the manager addresses seen at or after since, sorted.
func (db *DB) AgentManagers(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := db.read().query(ctx, "SELECT address FROM agent_managers WHERE seen >= ? ORDER BY address", ts(since))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
