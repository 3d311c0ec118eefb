package monitor

import (
	"context"

	"github.com/lightsout/lightsout/internal/store"
)

// Store is what the monitor needs of persistence (store.Store and
// *sqlstore.DB have it): the accounts and machines to watch, the
// channels' stored states and the BMCs' learned profiles to start from,
// and where it saves what a check changed (a pinned GUID, a profile, a
// state with its transition, an audit entry).
type Store interface {
	Account(ctx context.Context, id int64) (store.Account, error)
	Accounts(ctx context.Context, f store.MachineFilter, p store.Page) ([]store.Account, error)
	AccountsOf(ctx context.Context, machineID int64) ([]store.Account, error)
	MachineByID(ctx context.Context, id int64) (store.Machine, error)
	Machines(ctx context.Context, f store.MachineFilter, p store.Page) ([]store.Machine, error)
	States(ctx context.Context) ([]store.ChannelState, error)
	Profiles(ctx context.Context) (map[int64]store.Profile, error)
	UpdateMachine(ctx context.Context, m *store.Machine) error
	SaveProfile(ctx context.Context, p store.Profile) error
	SaveState(ctx context.Context, s store.ChannelState, t *store.Transition) error
	Audit(ctx context.Context, a *store.AuditEntry) error
}
