package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Replace hands old's role to spare (the seed's machine replacement): the
// spare takes old's group, role and tags and leaves the spare pool; old
// keeps its history and accounts and leaves the group. The spare must be
// marked spare and its OOB channel Connectable (so the replacement can be
// operated at once).
func (m *Manager) Replace(ctx context.Context, actor Actor, old, spare string) (err error) {
	defer func() { m.audit(ctx, actor, "machine.replace", old, "replaced by "+spare, err) }()
	if err := m.require(actor, store.RoleOperator, "replacing a machine"); err != nil {
		return err
	}
	if old == spare {
		return fieldErr("spare", "a machine cannot replace itself")
	}
	if err := checkName("spare", spare); err != nil {
		return err
	}
	if _, err := m.Store.Machine(ctx, old); err != nil {
		return err
	}
	sp, err := m.Store.Machine(ctx, spare)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &store.FieldError{Field: "spare", Reason: fmt.Sprintf("no machine named %q", spare), Err: store.ErrNotFound}
		}
		return err
	}
	if !sp.Spare {
		return fieldErr("spare", fmt.Sprintf("%q is not in the spare pool (mark it spare first)", spare))
	}
	if _, err := m.channelFor(ctx, sp); err != nil {
		return err
	}
	return m.Store.ReplaceMachine(ctx, old, spare)
}

// Adopt re-pins a machine's System GUID after a motherboard swap (admin
// only). With g empty, the GUID the BMC reports now is adopted; the channel
// must have answered with one.
func (m *Manager) Adopt(ctx context.Context, actor Actor, name, g string) (err error) {
	detail := ""
	defer func() { m.audit(ctx, actor, "machine.adopt", name, detail, err) }()
	if err := m.require(actor, store.RoleAdmin, "adopting a new GUID"); err != nil {
		return err
	}
	mc, err := m.Store.Machine(ctx, name)
	if err != nil {
		return err
	}
	if g == "" {
		accts, err := m.Store.AccountsOf(ctx, mc.ID)
		if err != nil {
			return err
		}
		for _, a := range accts {
			if cs, ok := m.Monitor.Get(a.ID); ok && cs.GUID != "" {
				g = cs.GUID
				break
			}
		}
		if g == "" {
			return fieldErr("guid", "the BMC has reported no GUID yet: check the machine first, or give the GUID")
		}
	}
	canon, err := canonicalGUID(g)
	if err != nil {
		return err
	}
	if cur, perr := guid.Parse(mc.GUID); perr == nil {
		if ng, _ := guid.Parse(canon); guid.Same(cur, ng) {
			return fieldErr("guid", "the machine already has this GUID")
		}
	}
	// One BMC, one machine: a GUID another machine is registered with (in
	// any layout) is that machine's identity — a swapped or reused
	// address, not a new board.
	if owner, err := m.guidOwner(ctx, mc.ID, canon); err != nil {
		return err
	} else if owner != "" {
		return fieldErr("guid", fmt.Sprintf("%s is registered to machine %s: adopting it would give two machines one BMC (a swapped or reused address, not a replaced board: lightsout diag %s)", canon, owner, name))
	}
	detail = fmt.Sprintf("System GUID %s → %s", orNone(mc.GUID), canon)
	mc.GUID, mc.Registering = canon, false
	if err := m.Store.UpdateMachine(ctx, &mc); err != nil {
		return err
	}
	if err := m.Monitor.RefreshMachine(ctx, mc.ID); err != nil {
		return err
	}
	// Re-check now so the channel leaves Invalid without waiting.
	if accts, err := m.Store.AccountsOf(ctx, mc.ID); err == nil {
		ids := make([]int64, len(accts))
		for i, a := range accts {
			ids[i] = a.ID
		}
		_, _ = m.Monitor.CheckNow(ctx, ids)
	}
	return nil
}

// guidOwner is the name of the machine other than id registered with GUID g
// in any layout ("" if none).
func (m *Manager) guidOwner(ctx context.Context, id int64, g string) (string, error) {
	want, err := guid.Parse(g)
	if err != nil {
		return "", nil
	}
	ms, err := m.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return "", err
	}
	for _, o := range ms {
		if o.ID == id || o.GUID == "" {
			continue
		}
		if og, err := guid.Parse(o.GUID); err == nil && guid.Same(og, want) {
			return o.Name, nil
		}
	}
	return "", nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Register marks a machine for registration: its GUID is cleared and pinned
// again by its next Connectable check.
func (m *Manager) Register(ctx context.Context, actor Actor, name string) (err error) {
	defer func() { m.audit(ctx, actor, "machine.register", name, "awaiting the first Connectable check", err) }()
	if err := m.require(actor, store.RoleAdmin, "re-registering a machine"); err != nil {
		return err
	}
	mc, err := m.Store.Machine(ctx, name)
	if err != nil {
		return err
	}
	mc.GUID, mc.Registering = "", true
	if err := m.Store.UpdateMachine(ctx, &mc); err != nil {
		return err
	}
	return m.Monitor.RefreshMachine(ctx, mc.ID)
}

// Allocate assigns machines to a group and powers them on (the seed's
// resource allocation). A machine is refused, with its reason, when its
// channel is not Connectable or it is already in another group; the others
// proceed.
func (m *Manager) Allocate(ctx context.Context, actor Actor, group string, names []string, s power.Stagger, progress func(power.Result)) ([]power.Result, error) {
	if err := m.require(actor, store.RoleOperator, "allocating machines"); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, fieldErr("group", "required")
	}
	// The group is stored: the inventory file's rules, as every way in.
	if err := validate(store.Machine{Name: "allocate", Group: group}, nil); err != nil {
		return nil, err
	}
	ms, err := m.resolve(ctx, names, "")
	if err != nil {
		return nil, err
	}
	items := make([]power.Item, len(ms))
	for i, mc := range ms {
		items[i] = power.Item{Machine: mc.Name, Do: func(ctx context.Context) (p string, err error) {
			defer func() { m.audit(ctx, actor, "machine.allocate", mc.Name, "group "+group, err) }()
			if mc.Group != "" && mc.Group != group {
				return "", &power.RefusedError{Machine: mc.Name, Detail: fmt.Sprintf("already in group %q; release it first", mc.Group)}
			}
			ch, err := m.channelFor(ctx, mc)
			if err != nil {
				return "", err
			}
			mc.Group, mc.Spare = group, false
			if err := m.Store.UpdateMachine(ctx, &mc); err != nil {
				return "", err
			}
			octx, cancel := context.WithTimeout(ctx, m.OpTimeout)
			defer cancel()
			return power.Do(octx, ch, power.On)
		}}
	}
	return power.Run(ctx, power.On, items, s, progress), nil
}

// History is a machine's channel transitions, newest first.
func (m *Manager) History(ctx context.Context, name string, before int64, limit int) ([]store.Transition, error) {
	mc, err := m.Store.Machine(ctx, name)
	if err != nil {
		return nil, err
	}
	return m.Store.HistoryOfMachine(ctx, mc.ID, before, limit)
}

// Summary counts channels by state.
type Summary struct {
	Machines int               `json:"machines"`
	Channels int               `json:"channels"`
	OOB      map[state.OOB]int `json:"oob"`
}

// Summarize counts every monitored channel by declared state.
func (m *Manager) Summarize(ctx context.Context) (Summary, error) {
	ms, err := m.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Machines: len(ms), OOB: map[state.OOB]int{}}
	for _, cs := range m.Monitor.Snapshot() {
		s.Channels++
		s.OOB[cs.State]++
	}
	return s, nil
}
