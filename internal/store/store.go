package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors; wrap-friendly, test with errors.Is.
var (
	// ErrNotFound: no row with that name or ID.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique name (machine, enclosure, token) or a unique
	// address (protocol, address, port) is already taken.
	ErrConflict = errors.New("already exists")
)

// FieldError names the field (and, for imports, the source line) a write was
// refused for. Is(ErrConflict) / Is(ErrNotFound) hold through Err.
type FieldError struct {
	Line   int    // 0 when not from an import
	Record string // machine / enclosure / token name, when known
	Field  string // e.g. "name", "address", "machine"
	Reason string
	Err    error // ErrConflict, ErrNotFound or nil
}

func (e *FieldError) Error() string {
	s := ""
	if e.Line > 0 {
		s = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Record != "" {
		s += fmt.Sprintf("%s: ", e.Record)
	}
	return s + e.Field + ": " + e.Reason
}

func (e *FieldError) Unwrap() error { return e.Err }

// Store is what the manager needs from persistence. *DB implements it for
// SQLite and PostgreSQL. All methods are safe for concurrent use. Lists are
// ordered by ID.
type Store interface {
	// Machines.
	AddMachine(ctx context.Context, m *Machine) error     // sets ID, CreatedAt, UpdatedAt
	UpdateMachine(ctx context.Context, m *Machine) error  // by ID; every field
	DeleteMachine(ctx context.Context, name string) error // with its accounts, channel states and transitions
	Machine(ctx context.Context, name string) (Machine, error)
	MachineByID(ctx context.Context, id int64) (Machine, error)
	Machines(ctx context.Context, f MachineFilter, p Page) ([]Machine, error)
	// MachineByGUID finds the machine whose pinned GUID is g (canonical
	// SMBIOS rendering), ErrNotFound if none.
	MachineByGUID(ctx context.Context, g string) (Machine, error)
	// ReplaceMachine hands old's place to spare in one transaction: spare
	// takes old's group, role and tags and stops being a spare; old keeps
	// its accounts but loses group, role and tags (Spare=false). spare
	// must be marked Spare.
	ReplaceMachine(ctx context.Context, old, spare string) error

	// OOB accounts.
	AddAccount(ctx context.Context, a *Account) error
	UpdateAccount(ctx context.Context, a *Account) error // by ID; sets CredentialsChangedAt when user or password changed
	DeleteAccount(ctx context.Context, id int64) error
	Account(ctx context.Context, id int64) (Account, error)
	// Accounts lists accounts (with passwords decrypted) of machines
	// matching f; machineID 0 means all.
	Accounts(ctx context.Context, f MachineFilter, p Page) ([]Account, error)
	AccountsOf(ctx context.Context, machineID int64) ([]Account, error)
	// Learned BMC profiles (cipher suite that worked, quirks), by account.
	Profiles(ctx context.Context) (map[int64]Profile, error)
	SaveProfile(ctx context.Context, p Profile) error

	// Enclosures.
	AddEnclosure(ctx context.Context, e *Enclosure) error
	UpdateEnclosure(ctx context.Context, e *Enclosure) error
	DeleteEnclosure(ctx context.Context, name string) error
	Enclosure(ctx context.Context, name string) (Enclosure, error)
	Enclosures(ctx context.Context) ([]Enclosure, error)

	// Import adds every row (machine + account) and any enclosures in one
	// transaction: either all are added or, on the first problem, none;
	// the error is a *FieldError naming the row's line and field. Machines
	// that already exist by name are updated when replace is true and
	// refused otherwise.
	Import(ctx context.Context, rows []ImportRow, enclosures []Enclosure, replace bool) error

	// Channel states. SaveState stores the current state and, when
	// t != nil, appends the transition, in one transaction.
	SaveState(ctx context.Context, s ChannelState, t *Transition) error
	// States lists every channel's state without its evidence (State
	// has one channel's evidence).
	States(ctx context.Context) ([]ChannelState, error)
	State(ctx context.Context, accountID int64) (ChannelState, error)
	// History lists a channel's transitions newest first; before 0 means
	// from the newest, otherwise IDs < before; limit 0 means 100.
	History(ctx context.Context, accountID int64, before int64, limit int) ([]Transition, error)
	// HistoryOfMachine is History over all of a machine's accounts.
	HistoryOfMachine(ctx context.Context, machineID int64, before int64, limit int) ([]Transition, error)

	// Events. AddEvent merges into an existing event with the same code
	// and source whose LastAt is within dedup (Count+1, LastAt, Message and
	// Data updated) and returns it; dedup 0 never merges.
	AddEvent(ctx context.Context, e *Event, dedup time.Duration) error
	// Events lists newest first; since zero means all; limit 0 means 100.
	Events(ctx context.Context, since time.Time, code string, limit int) ([]Event, error)
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	// ListEvents is Events with more filters (source, least severity, a
	// code family "audit.*", paging by ID).
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)

	// Redfish certificate pins (trust on first use). CertPin is "" when
	// none is pinned; PinCert replaces any pin (hex SHA-256).
	CertPin(ctx context.Context, machine string) (string, error)
	PinCert(ctx context.Context, machine, fingerprint string) error

	// Audit log.
	Audit(ctx context.Context, a *AuditEntry) error
	AuditLog(ctx context.Context, target string, limit int) ([]AuditEntry, error) // newest first

	// API tokens.
	AddToken(ctx context.Context, t *Token) error
	// TokenByHash returns revoked tokens too: callers check Revoked.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	Tokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, name string) error

	Close() error
}
