package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// CertPin returns the SHA-256 fingerprint (hex) pinned for the named
// machine's Redfish certificate, "" when none is pinned.
func (db *DB) CertPin(ctx context.Context, machine string) (string, error) {
	var fp string
	err := db.read().row(ctx, `SELECT p.sha256 FROM cert_pins p JOIN machines m ON m.id = p.machine_id WHERE m.name = ?`, machine).Scan(&fp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return fp, mapErr(err, "")
}

// PinCert pins fingerprint (hex SHA-256 of the leaf certificate) for the
// named machine, replacing any pin: the first contact does it, and an
// admin accepting a new certificate. An unknown machine is ErrNotFound.
func (db *DB) PinCert(ctx context.Context, machine, fingerprint string) error {
	fingerprint = strings.ToLower(strings.TrimSpace(fingerprint))
	if len(fingerprint) != 64 || strings.Trim(fingerprint, "0123456789abcdef") != "" {
		return &FieldError{Field: "sha256", Reason: "must be 64 hexadecimal digits"}
	}
	return db.tx(ctx, func(x q) error {
		res, err := x.exec(ctx, `INSERT INTO cert_pins (machine_id, sha256, pinned_at)
SELECT id, ?, ? FROM machines WHERE name = ?
ON CONFLICT (machine_id) DO UPDATE SET sha256 = excluded.sha256, pinned_at = excluded.pinned_at`, fingerprint, ts(now()), machine)
		if err != nil {
			return mapErr(err, "machine "+machine)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
