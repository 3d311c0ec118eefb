package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/store"
)

// Import stores a parsed inventory in one transaction: every machine with
// its OOB account, and the enclosures it defines. Passwords come separately
// (the client read them from the files the inventory names), keyed by
// machine and enclosure name. A bad row refuses the whole import with its
// line and field. It returns how many machines were imported.
func (m *Manager) Import(ctx context.Context, actor Actor, inv *inventory.Inventory, passwords, enclosurePasswords map[string][]byte, replace bool) (n int, err error) {
	defer func() {
		m.audit(ctx, actor, "inventory.import", "", fmt.Sprintf("%d machines, %d enclosures, replace=%v", len(inv.Machines), len(inv.Enclosures), replace), err)
	}()
	need := store.RoleOperator
	if replace {
		need = store.RoleAdmin
	}
	if err := m.require(actor, need, "importing an inventory"); err != nil {
		return 0, err
	}
	if err := inv.Validate(); err != nil {
		return 0, err
	}
	rows := make([]store.ImportRow, 0, len(inv.Machines))
	for _, im := range inv.Machines {
		if im.EffectiveProtocol() == inventory.ProtocolIPMI && len(passwords[im.Name]) > 20 {
			return 0, &store.FieldError{Line: im.Line, Record: im.Name, Field: "password", Reason: "IPMI 2.0 passwords are at most 20 bytes"}
		}
		g, err := canonicalGUID(im.GUID)
		if err != nil {
			return 0, &store.FieldError{Line: im.Line, Record: im.Name, Field: "guid", Reason: err.Error()}
		}
		rows = append(rows, store.ImportRow{Line: im.Line,
			Machine: store.Machine{Name: im.Name, GUID: g, Group: im.Group, Tags: im.Tags, Role: im.Role, Spare: im.Spare,
				Enclosure: im.Enclosure, Slot: im.Slot, Registering: g == "", Zone: m.zoneOf(im.Zone, im.Address)},
			Account: store.Account{Protocol: im.EffectiveProtocol(), Address: im.Address, Port: im.Port, // 0: the protocol's default (store.DefaultPort)
				User: im.User, Password: passwords[im.Name], Privilege: privilegeName(im.Privilege), CipherSuite: im.CipherSuite,
				RedfishAuth: im.RedfishAuth, CipherSuites: suiteList(im.CipherSuites)},
		})
	}
	encs := make([]store.Enclosure, 0, len(inv.Enclosures))
	for _, e := range inv.Enclosures {
		proto, port := e.EffectiveProtocol(), e.EffectivePort()
		encs = append(encs, store.Enclosure{Name: e.Name, Protocol: proto, Address: e.Address, Port: port,
			User: e.User, Password: enclosurePasswords[e.Name], Slots: e.Slots, Kind: e.Kind, IPMB: e.IPMB})
	}
	moves, err := m.importMoves(ctx, rows, replace)
	if err != nil {
		return 0, err
	}
	if err := m.Store.Import(ctx, rows, encs, replace); err != nil {
		return 0, err
	}
	for _, mv := range moves {
		m.audit(ctx, actor, "account.update", mv.machine, strings.Join(mv.changes, ", ")+" (inventory import with replace)", nil)
	}
	if err := m.Monitor.Load(ctx); err != nil {
		return len(rows), err
	}
	return len(rows), nil
}

type importMove struct {
	machine string
	changes []string
}

// importMoves applies the password binding to an import with replace: a
// row that moves an existing machine's account (protocol, address or port)
// must give its password (the stored one is bound to the old endpoint).
// It returns every changed account's changes, for the audit log.
func (m *Manager) importMoves(ctx context.Context, rows []store.ImportRow, replace bool) ([]importMove, error) {
	if !replace {
		return nil, nil // existing machines are refused
	}
	var out []importMove
	for _, r := range rows {
		mc, err := m.Store.Machine(ctx, r.Machine.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		accts, err := m.Store.AccountsOf(ctx, mc.ID)
		if err != nil {
			return nil, err
		}
		na := r.Account
		if na.Port == 0 {
			na.Port = store.DefaultPort(na.Protocol)
		}
		// The account the import updates: same endpoint, else the only
		// one of the protocol (store.Import's rule).
		var old *store.Account
		same := 0
		for i, a := range accts {
			if store.EndpointOf(a) == store.EndpointOf(na) {
				old = &accts[i]
				same = -1
				break
			}
			if a.Protocol == na.Protocol {
				same++
				old = &accts[i]
			}
		}
		if same > 1 || old == nil {
			continue // a new account
		}
		moved := movedFrom(*old, na)
		if moved != "" && len(old.Password) > 0 && len(na.Password) == 0 {
			return nil, &store.FieldError{Line: r.Line, Record: r.Machine.Name, Field: "password",
				Reason: fmt.Sprintf("required: the import changes the account's %s and the stored password is bound to the old one", moved), Err: ErrPasswordBound}
		}
		if ch := accountChanges(*old, na); len(ch) > 0 {
			out = append(out, importMove{r.Machine.Name, ch})
		}
	}
	return out, nil
}

func privilegeName(p string) string {
	if p == "" {
		return "administrator"
	}
	return p
}

// Export returns the inventory (machines with their first OOB account, and
// enclosures), without passwords.
func (m *Manager) Export(ctx context.Context) (*inventory.Inventory, error) {
	ms, err := m.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return nil, err
	}
	accts, err := m.Store.Accounts(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return nil, err
	}
	first := map[int64]store.Account{}
	for _, a := range accts {
		if _, ok := first[a.MachineID]; !ok {
			first[a.MachineID] = a
		}
	}
	inv := &inventory.Inventory{}
	encs, err := m.Store.Enclosures(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range encs {
		ie := inventory.Enclosure{Name: e.Name, Address: e.Address, Port: e.Port,
			User: e.User, Protocol: e.Protocol, Slots: e.Slots}
		if e.Kind == inventory.KindIPMB || e.Kind == inventory.KindRedfish { // oem is the default: exports stay as they were
			ie.Kind, ie.IPMB = e.Kind, e.IPMB
		}
		inv.Enclosures = append(inv.Enclosures, ie)
	}
	for _, mc := range ms {
		a, ok := first[mc.ID]
		if !ok {
			continue // an inventory row needs an address
		}
		im := inventory.Machine{Name: mc.Name, GUID: mc.GUID, Address: a.Address, Port: a.Port, User: a.User,
			Protocol: a.Protocol, CipherSuite: a.CipherSuite, RedfishAuth: a.RedfishAuth, Enclosure: mc.Enclosure, Slot: mc.Slot,
			Group: mc.Group, Role: mc.Role, Tags: mc.Tags, Spare: mc.Spare, Zone: mc.Zone}
		if a.Privilege != "administrator" {
			im.Privilege = a.Privilege
		}
		for _, n := range a.CipherSuites {
			im.CipherSuites = append(im.CipherSuites, strconv.Itoa(n))
		}
		inv.Machines = append(inv.Machines, im)
	}
	return inv, nil
}

// EnclosureInput creates or edits an enclosure; on edits zero fields keep
// their value.
type EnclosureInput struct {
	Name     string  `json:"name"`
	Address  string  `json:"address,omitempty"`
	Port     int     `json:"port,omitempty"`
	User     *string `json:"user,omitempty"`
	Password *string `json:"password,omitempty"`
	Slots    int     `json:"slots,omitempty"`
	// KeepPassword (admin, edits only): keep the stored password when the
	// address or port changes, without giving it again.
	KeepPassword bool `json:"keep_password,omitempty"`
	// Kind ("ipmb" or "oem") and IPMB (kind ipmb's slot-to-address rule);
	// see inventory.Enclosure.
	Kind *string `json:"kind,omitempty"`
	IPMB *string `json:"ipmb,omitempty"`
}

func (m *Manager) enclosure(e store.Enclosure, in EnclosureInput) (store.Enclosure, error) {
	if in.Address != "" {
		e.Address = in.Address
	}
	if in.Port != 0 {
		e.Port = in.Port
	}
	e.Port = protocol.Protocol(cmp.Or(e.Protocol, inventory.ProtocolIPMI)).Port(e.Port)
	if in.User != nil {
		e.User = *in.User
	}
	if in.Password != nil {
		e.Password = []byte(*in.Password)
	}
	if in.Slots != 0 {
		e.Slots = in.Slots
	}
	if in.Kind != nil {
		e.Kind = *in.Kind
	}
	if in.IPMB != nil {
		e.IPMB = *in.IPMB
	}
	if e.Kind == inventory.KindOEM {
		e.IPMB = "" // the rule belongs to kind ipmb only
		if in.IPMB != nil && *in.IPMB != "" {
			e.IPMB = *in.IPMB // and is refused below
		}
	}
	e.Protocol = inventory.ProtocolIPMI
	if e.Kind == inventory.KindRedfish {
		e.Protocol = inventory.ProtocolRedfish
	}
	ie := inventory.Enclosure{Name: e.Name, Address: e.Address, Port: e.Port, User: e.User, Slots: e.Slots, Kind: e.Kind, IPMB: e.IPMB, Protocol: e.Protocol}
	if err := (&inventory.Inventory{Enclosures: []inventory.Enclosure{ie}}).Validate(); err != nil {
		if es, ok := err.(inventory.Errors); ok && len(es) > 0 {
			return e, &store.FieldError{Record: e.Name, Field: es[0].Field, Reason: reasonWithValue(es[0])}
		}
		return e, err
	}
	return e, nil
}

// AddEnclosure registers an enclosure manager.
func (m *Manager) AddEnclosure(ctx context.Context, actor Actor, in EnclosureInput) (e store.Enclosure, err error) {
	defer func() { m.audit(ctx, actor, "enclosure.add", in.Name, in.Address, err) }()
	if err := m.require(actor, store.RoleOperator, "adding an enclosure"); err != nil {
		return e, err
	}
	e, err = m.enclosure(store.Enclosure{Name: in.Name}, in)
	if err != nil {
		return e, err
	}
	if err := m.Store.AddEnclosure(ctx, &e); err != nil {
		return store.Enclosure{}, err
	}
	e.Password = nil
	return e, nil
}

// UpdateEnclosure edits an enclosure manager.
func (m *Manager) UpdateEnclosure(ctx context.Context, actor Actor, name string, in EnclosureInput) (e store.Enclosure, err error) {
	var detail []string
	defer func() { m.audit(ctx, actor, "enclosure.update", name, strings.Join(detail, ", "), err) }()
	if err := m.require(actor, store.RoleOperator, "editing an enclosure"); err != nil {
		return e, err
	}
	old, err := m.Store.Enclosure(ctx, name)
	if err != nil {
		return e, err
	}
	in.Name = name
	if in.KeepPassword && in.Password != nil {
		return e, fieldErr("keep_password", "give either a password or keep_password, not both")
	}
	e, err = m.enclosure(old, in)
	if err != nil {
		return e, err
	}
	// The password is bound to the enclosure manager's endpoint, as an
	// account's is.
	oa := store.Account{Protocol: old.Protocol, Address: old.Address, Port: old.Port, User: old.User, Password: old.Password}
	na := store.Account{Protocol: e.Protocol, Address: e.Address, Port: e.Port, User: e.User, Password: e.Password}
	moved := movedFrom(oa, na)
	if err := passwordMayMove(actor, oa, moved, in.Password != nil, in.KeepPassword); err != nil {
		return e, err
	}
	detail = accountChanges(oa, na)
	if in.Slots != 0 && in.Slots != old.Slots {
		detail = append(detail, fmt.Sprintf("slots %d → %d", old.Slots, in.Slots))
	}
	if moved != "" && len(old.Password) > 0 && in.Password == nil {
		detail = append(detail, "password kept for the new "+moved+" (keep_password, by an admin)")
	}
	if err := m.Store.UpdateEnclosure(ctx, &e); err != nil {
		return store.Enclosure{}, err
	}
	e.Password = nil
	return e, nil
}

// DeleteEnclosure removes an enclosure manager (admin).
func (m *Manager) DeleteEnclosure(ctx context.Context, actor Actor, name string) (err error) {
	defer func() { m.audit(ctx, actor, "enclosure.delete", name, "", err) }()
	if err := m.require(actor, store.RoleAdmin, "deleting an enclosure"); err != nil {
		return err
	}
	return m.Store.DeleteEnclosure(ctx, name)
}

// suiteList reads a validated inventory allow-list (nil: the default).
func suiteList(items []string) []int {
	l, _ := inventory.ParseSuiteList(items) // validated by the inventory's rules
	return l
}
