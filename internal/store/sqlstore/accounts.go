package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// checkEndpoint validates and normalizes protocol, address and port (0: the
// protocol's default).
func checkEndpoint(record string, protocol *string, address string, port *int) *FieldError {
	*protocol = strings.ToLower(strings.TrimSpace(*protocol))
	switch *protocol {
	case "ipmi", "redfish":
	case "":
		return &FieldError{Record: record, Field: "protocol", Reason: "must not be empty (ipmi or redfish)"}
	default:
		return &FieldError{Record: record, Field: "protocol", Reason: fmt.Sprintf("%q is not ipmi or redfish", *protocol)}
	}
	if strings.TrimSpace(address) == "" {
		return &FieldError{Record: record, Field: "address", Reason: "must not be empty"}
	}
	if strings.IndexFunc(address, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return &FieldError{Record: record, Field: "address", Reason: fmt.Sprintf("%q contains spaces or control characters", address)}
	}
	if *port == 0 {
		*port = DefaultPort(*protocol)
	}
	if *port < 1 || *port > 65535 {
		return &FieldError{Record: record, Field: "port", Reason: fmt.Sprintf("%d is not in 1..65535", *port)}
	}
	return nil
}

// normalizeAccount validates a (except MachineID) and fills defaults: port
// from the protocol, privilege administrator.
func normalizeAccount(record string, a *Account) *FieldError {
	if fe := checkEndpoint(record, &a.Protocol, a.Address, &a.Port); fe != nil {
		return fe
	}
	a.Privilege = strings.ToLower(strings.TrimSpace(a.Privilege))
	switch a.Privilege {
	case "user", "operator", "administrator":
	case "":
		a.Privilege = "administrator"
	default:
		return &FieldError{Record: record, Field: "privilege", Reason: fmt.Sprintf("%q is not user, operator or administrator", a.Privilege)}
	}
	a.RedfishAuth = strings.ToLower(strings.TrimSpace(a.RedfishAuth))
	switch a.RedfishAuth {
	case "auto":
		a.RedfishAuth = ""
	case "", "session", "basic":
	default:
		return &FieldError{Record: record, Field: "redfish_auth", Reason: fmt.Sprintf("%q is not auto, session or basic", a.RedfishAuth)}
	}
	if a.CipherSuite < 0 || a.CipherSuite > 255 {
		return &FieldError{Record: record, Field: "cipher_suite", Reason: fmt.Sprintf("%d is not in 0..255", a.CipherSuite)}
	}
	if r := checkSuiteList(a.CipherSuites); r != "" {
		return &FieldError{Record: record, Field: "cipher_suites", Reason: r}
	}
	if len(a.CipherSuites) == 0 {
		a.CipherSuites = nil
	}
	if strings.IndexFunc(a.User, unicode.IsControl) >= 0 {
		return &FieldError{Record: record, Field: "user", Reason: "contains control characters"}
	}
	return nil
}

const accountCols = `a.id, a.machine_id, m.name, a.protocol, a.address, a.port, a.username, a.password,
  a.privilege, a.cipher_suite, a.cipher_suites, a.redfish_auth, a.credentials_changed_at, a.created_at, a.updated_at`

const accountFrom = ` FROM accounts a JOIN machines m ON m.id = a.machine_id`

func (db *DB) scanAccount(s scanner) (Account, error) {
	var a Account
	var pw []byte
	var changed, created, updated int64
	var suites string
	if err := s.Scan(&a.ID, &a.MachineID, &a.Machine, &a.Protocol, &a.Address, &a.Port, &a.User, &pw,
		&a.Privilege, &a.CipherSuite, &suites, &a.RedfishAuth, &changed, &created, &updated); err != nil {
		return a, err
	}
	a.CipherSuites = parseSuiteText(suites)
	var err error
	if a.Password, err = db.unseal(fmt.Sprintf("machine %q, account %d", a.Machine, a.ID), pw, accountBinding(a.Protocol, a.Address, a.Port)); err != nil {
		return a, err
	}
	a.CredentialsChangedAt, a.CreatedAt, a.UpdatedAt = fromTS(changed), fromTS(created), fromTS(updated)
	return a, nil
}

// checkAddress refuses an endpoint another account (ID ≠ id) uses, naming
// its machine.
func checkAddress(ctx context.Context, x q, record string, a *Account) error {
	var other string
	err := x.row(ctx, `SELECT m.name`+accountFrom+` WHERE a.protocol = ? AND a.address = ? AND a.port = ? AND a.id <> ?`,
		a.Protocol, a.Address, a.Port, a.ID).Scan(&other)
	if err == nil {
		return &FieldError{Record: record, Field: "address", Reason: fmt.Sprintf("%s %s port %d is already used by machine %q", a.Protocol, a.Address, a.Port, other), Err: ErrConflict}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return mapErr(err, record)
	}
	return nil
}

// machineName returns the name of machine id, or a FieldError on "machine".
func machineName(ctx context.Context, x q, record string, id int64) (string, error) {
	var name string
	err := x.row(ctx, "SELECT name FROM machines WHERE id = ?", id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", &FieldError{Record: record, Field: "machine", Reason: fmt.Sprintf("no machine with ID %d", id), Err: ErrNotFound}
	}
	return name, mapErr(err, record)
}

// insertAccount validates and inserts a for machine a.MachineID.
func (db *DB) insertAccount(ctx context.Context, x q, record string, a *Account) error {
	if fe := normalizeAccount(record, a); fe != nil {
		return fe
	}
	name, err := machineName(ctx, x, record, a.MachineID)
	if err != nil {
		return err
	}
	if record == "" {
		record = name
	}
	a.ID = 0
	if err := checkAddress(ctx, x, record, a); err != nil {
		return err
	}
	pw, err := db.seal("machine "+name, a.Password, accountBinding(a.Protocol, a.Address, a.Port))
	if err != nil {
		return err
	}
	t := now()
	err = x.row(ctx, `INSERT INTO accounts (machine_id, protocol, address, port, username, password, privilege, cipher_suite,
  cipher_suites, redfish_auth, credentials_changed_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		a.MachineID, a.Protocol, a.Address, a.Port, a.User, pw, a.Privilege, a.CipherSuite, suiteText(a.CipherSuites), a.RedfishAuth, ts(t), ts(t), ts(t)).Scan(&a.ID)
	if err != nil {
		return mapErr(err, record)
	}
	// Unknown until its first saved state (the listing's state filter).
	if _, err := x.exec(ctx, "INSERT INTO channel_index (account_id, machine_id) VALUES (?, ?)", a.ID, a.MachineID); err != nil {
		return mapErr(err, record)
	}
	a.Machine = name
	a.CredentialsChangedAt, a.CreatedAt, a.UpdatedAt = t, t, t
	return nil
}

// updateAccount writes every field of a by ID; CredentialsChangedAt moves
// when the user or the password changed.
func (db *DB) updateAccount(ctx context.Context, x q, record string, a *Account) error {
	if fe := normalizeAccount(record, a); fe != nil {
		return fe
	}
	var oldUser, oldProto, oldAddr string
	var oldPort int
	var oldPW []byte
	var changed, created int64
	err := x.row(ctx, "SELECT username, password, protocol, address, port, credentials_changed_at, created_at FROM accounts WHERE id = ?", a.ID).
		Scan(&oldUser, &oldPW, &oldProto, &oldAddr, &oldPort, &changed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return &FieldError{Record: record, Field: "id", Reason: fmt.Sprintf("no account with ID %d", a.ID), Err: ErrNotFound}
	}
	if err != nil {
		return mapErr(err, record)
	}
	name, err := machineName(ctx, x, record, a.MachineID)
	if err != nil {
		return err
	}
	if record == "" {
		record = name
	}
	if err := checkAddress(ctx, x, record, a); err != nil {
		return err
	}
	t := now()
	pw := oldPW
	// An old password that does not decrypt counts as changed: this is how
	// an operator repairs it. A password that stays is sealed again when
	// the endpoint it is bound to moved (the manager decides whether it may).
	bind := accountBinding(a.Protocol, a.Address, a.Port)
	old, err := db.unseal("", oldPW, accountBinding(oldProto, oldAddr, oldPort))
	if err != nil || !bytes.Equal(old, a.Password) {
		if pw, err = db.seal("machine "+name, a.Password, bind); err != nil {
			return err
		}
		changed = ts(t)
	} else {
		if oldProto != a.Protocol || oldAddr != a.Address || oldPort != a.Port {
			if pw, err = db.seal("machine "+name, a.Password, bind); err != nil {
				return err
			}
		}
		if oldUser != a.User {
			changed = ts(t)
		}
	}
	// The caller may mark the credentials edited (re-entered unchanged).
	if a.CredentialsChangedAt.After(fromTS(changed)) {
		changed = ts(a.CredentialsChangedAt)
	}
	_, err = x.exec(ctx, `UPDATE accounts SET machine_id = ?, protocol = ?, address = ?, port = ?, username = ?, password = ?,
  privilege = ?, cipher_suite = ?, cipher_suites = ?, redfish_auth = ?, credentials_changed_at = ?, updated_at = ? WHERE id = ?`,
		a.MachineID, a.Protocol, a.Address, a.Port, a.User, pw, a.Privilege, a.CipherSuite, suiteText(a.CipherSuites), a.RedfishAuth, changed, ts(t), a.ID)
	if err != nil {
		return mapErr(err, record)
	}
	if _, err := x.exec(ctx, "UPDATE channel_index SET machine_id = ? WHERE account_id = ? AND machine_id <> ?", a.MachineID, a.ID, a.MachineID); err != nil {
		return mapErr(err, record)
	}
	a.Machine = name
	a.CredentialsChangedAt, a.CreatedAt, a.UpdatedAt = fromTS(changed), fromTS(created), t
	return nil
}

// AddAccount adds an OOB account to machine a.MachineID, setting ID, Machine
// and the times. Port 0 means the protocol's default (623, 443); an empty
// privilege means administrator.
func (db *DB) AddAccount(ctx context.Context, a *Account) error {
	return db.tx(ctx, func(x q) error { return db.insertAccount(ctx, x, "", a) })
}

// UpdateAccount writes every field of the account with a.ID, and sets
// CredentialsChangedAt when the user or the password changed.
func (db *DB) UpdateAccount(ctx context.Context, a *Account) error {
	return db.tx(ctx, func(x q) error { return db.updateAccount(ctx, x, "", a) })
}

// DeleteAccount deletes an account with its channel state and transitions.
func (db *DB) DeleteAccount(ctx context.Context, id int64) error {
	return db.tx(ctx, func(x q) error {
		res, err := x.exec(ctx, "DELETE FROM accounts WHERE id = ?", id)
		if err != nil {
			return mapErr(err, "")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFoundID("account", id)
		}
		return nil
	})
}

// Account returns the account with ID id, password decrypted.
func (db *DB) Account(ctx context.Context, id int64) (Account, error) {
	a, err := db.scanAccount(db.read().row(ctx, "SELECT "+accountCols+accountFrom+" WHERE a.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, notFoundID("account", id)
	}
	return a, mapErr(err, "")
}

// Accounts lists, by ID, the accounts of the machines matching f.
func (db *DB) Accounts(ctx context.Context, f MachineFilter, p Page) ([]Account, error) {
	conds, args := db.filterSQL(f)
	tail, args := pageSQL("a.id", p, conds, args)
	return db.accounts(ctx, tail, args...)
}

// AccountsOf lists a machine's accounts by ID.
func (db *DB) AccountsOf(ctx context.Context, machineID int64) ([]Account, error) {
	return db.accounts(ctx, " WHERE a.machine_id = ? ORDER BY a.id", machineID)
}

func (db *DB) accounts(ctx context.Context, tail string, args ...any) ([]Account, error) {
	rows, err := db.read().query(ctx, "SELECT "+accountCols+accountFrom+tail, args...)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := db.scanAccount(rows)
		if err != nil {
			return nil, mapErr(err, "")
		}
		out = append(out, a)
	}
	return out, mapErr(rows.Err(), "")
}
