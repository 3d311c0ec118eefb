package gather

import (
	"context"

	"github.com/lightsout/lightsout/internal/store"
)

// Store is what the executor reads of persistence (store.Store and
// *sqlstore.DB have it): the machines and their accounts, the channels'
// stored states and history, enclosures, and the audit log. It writes
// nothing: fixes go through the manager.
type Store interface {
	Account(ctx context.Context, id int64) (store.Account, error)
	Accounts(ctx context.Context, f store.MachineFilter, p store.Page) ([]store.Account, error)
	AccountsOf(ctx context.Context, machineID int64) ([]store.Account, error)
	AuditLog(ctx context.Context, target string, limit int) ([]store.AuditEntry, error)
	Enclosure(ctx context.Context, name string) (store.Enclosure, error)
	History(ctx context.Context, accountID int64, before int64, limit int) ([]store.Transition, error)
	MachineByID(ctx context.Context, id int64) (store.Machine, error)
	Machines(ctx context.Context, f store.MachineFilter, p store.Page) ([]store.Machine, error)
	State(ctx context.Context, accountID int64) (store.ChannelState, error)
	States(ctx context.Context) ([]store.ChannelState, error)
}
