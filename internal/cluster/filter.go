package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/lightsout/lightsout/internal/store"
)

// Store returns inner as the monitor should see it: the accounts of the
// machines this node may check, and no other (Account of another's is
// store.ErrNotFound, so the monitor's Refresh drops it). Everything else
// passes through.
func (n *Node) Store(inner store.Store) store.Store {
	n.inner = inner
	return &filtered{Store: inner, n: n}
}

// SaveState writes, or buffers while the database is unreachable.
func (f *filtered) SaveState(ctx context.Context, s store.ChannelState, t *store.Transition) error {
	return f.n.saveState(ctx, f.Store, s, t)
}

type filtered struct {
	store.Store
	n *Node
}

func (f *filtered) Accounts(ctx context.Context, mf store.MachineFilter, p store.Page) ([]store.Account, error) {
	accts, err := f.Store.Accounts(ctx, mf, p)
	if err != nil {
		return nil, err
	}
	ms, err := f.Store.Machines(ctx, mf, store.Page{})
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]store.Machine, len(ms))
	for _, m := range ms {
		byID[m.ID] = m
	}
	out := accts[:0]
	refused := map[int64][]int64{}
	for _, a := range accts {
		m, ok := byID[a.MachineID]
		if ok && f.n.admit(m.ID, m.Name, store.ZoneOf(m), a.ID) {
			out = append(out, a)
		} else if ok {
			refused[m.ID] = append(refused[m.ID], a.ID)
		}
	}
	// A machine held but no longer ours (a change missed): dropped.
	for id, as := range refused {
		f.n.release(id, as...)
	}
	return out, nil
}

func (f *filtered) Account(ctx context.Context, id int64) (store.Account, error) {
	a, err := f.Store.Account(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		f.n.forget(0, id)
	}
	if err != nil {
		return a, err
	}
	m, err := f.Store.MachineByID(ctx, a.MachineID)
	if err != nil {
		return store.Account{}, err
	}
	if !f.n.admit(m.ID, m.Name, store.ZoneOf(m), a.ID) {
		f.n.forget(m.ID, id)
		return store.Account{}, fmt.Errorf("account %d: machine %q is checked by another instance: %w", id, m.Name, store.ErrNotFound)
	}
	return a, nil
}

func (f *filtered) AccountsOf(ctx context.Context, machineID int64) ([]store.Account, error) {
	m, err := f.Store.MachineByID(ctx, machineID)
	if errors.Is(err, store.ErrNotFound) {
		f.n.release(machineID)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	accts, err := f.Store.AccountsOf(ctx, machineID)
	if err != nil {
		return nil, err
	}
	var out []store.Account
	for _, a := range accts {
		if f.n.admit(m.ID, m.Name, store.ZoneOf(m), a.ID) {
			out = append(out, a)
		}
	}
	if len(accts) > 0 && len(out) == 0 {
		ids := make([]int64, len(accts))
		for i, a := range accts {
			ids[i] = a.ID
		}
		f.n.release(machineID, ids...) // its zone moved it to another instance
	}
	return out, nil
}
