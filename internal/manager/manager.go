// Package manager is the management server's core: it owns the inventory
// (through the store), the monitor, power and lifecycle operations, and
// enforces their rules — validation with field names, refusal of operations
// on channels that are not Connectable, an audit entry for every change. The
// API and the CLI are thin layers over it.
package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/diag/gather"
	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Manager ties the store, the monitor and the engine together.
type Manager struct {
	Store   store.Store
	Monitor *monitor.Monitor
	Engine  *ipmi.Engine
	Log     *slog.Logger
	// OpTimeout bounds one machine's power operation (default 30 s).
	OpTimeout time.Duration
	// OnAudit, when set, is called with every audit entry the manager
	// writes (the API counts operations with it). It must not block.
	OnAudit func(store.AuditEntry)
	// Security is the BMC security audit (nil: none); its latest findings
	// count toward a channel's Insecure condition (see security.go).
	Security *audit.Auditor
	// Diag tunes the diagnosis (Diagnose, diag.go).
	Diag DiagConfig
	// Redfish is the shared transport of power operations over Redfish
	// (New gives it a transport of its own; the server shares its one).
	Redfish http.RoundTripper
	// Agents runs ops on host agents (the server sets its agent hub); the
	// agent fallback of a soft-off asks the agent enrolled under the
	// machine's name to run os-shutdown (fallback.go). Nil: no agents.
	Agents AgentOps
	// ZoneFor, when set, gives the zone of a machine imported or added
	// without one from its BMC address (the server's --zone-rule list,
	// cluster.ZoneRules): "" leaves it in the default zone.
	ZoneFor func(address string) string
	// Detectors and AgentList feed incidents (incidents.go): the event
	// recorder's fleet findings and floods, the agent hub's states. Nil:
	// none.
	Detectors FleetDetectors
	AgentList AgentLister
	// FallbackPoll is how often the agent fallback reads the power state
	// (0: DefaultFallbackPoll, 2 s).
	FallbackPoll time.Duration
	// Suites is the fleet-wide cipher suite allow-list for accounts that
	// name none (nil: 17, then 3).
	Suites []ipmi.CipherSuite
	// Unwatched, when set, gives the zones no live instance serves and
	// since when (cluster.Node.Unwatched): their channels are shown stale
	// (ChannelView.StaleSince), never as current.
	Unwatched func() map[string]time.Time
	// Instances, when set, lists the instances sharing the database and
	// Self is this one's name: a diagnosis names a session another
	// instance left on a BMC (gather.Executor.Instances).
	Instances func() []store.Instance
	Self      string
	// WholeFleet, when set and true, says this instance's monitor checks
	// every channel of the fleet (one instance): incidents are then read
	// from the monitor's broken channels, not from a listing of the whole
	// fleet (incidents.go). Nil or false: the listing.
	WholeFleet func() bool

	// emPins pins Redfish enclosure managers' certificates on first
	// contact, for the life of the process (persistent pins need a store
	// table: see docs/diagnosis.md).
	emPins probe.MemPins
}

// New returns a manager; the monitor must already be loaded.
func New(st store.Store, mon *monitor.Monitor, eng *ipmi.Engine, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{Store: st, Monitor: mon, Engine: eng, Log: log, OpTimeout: 30 * time.Second, Redfish: probe.NewRedfishTransport()}
}

// Actor is who asks for an operation: an API token's name and role.
type Actor struct {
	Name string
	Role store.Role
}

// ErrForbidden: the actor's role is too low for the operation.
var ErrForbidden = errors.New("forbidden")

func (m *Manager) require(a Actor, r store.Role, what string) error {
	if a.Role.Rank() < r.Rank() {
		return fmt.Errorf("%w: %s needs role %s; %q has %s", ErrForbidden, what, r, a.Name, a.Role)
	}
	return nil
}

func (m *Manager) audit(ctx context.Context, a Actor, action, target, detail string, err error) {
	e := store.AuditEntry{At: time.Now(), Actor: a.Name, Action: action, Target: target, Detail: detail, Result: "ok"}
	if err != nil {
		e.Result, e.Error = "failed", err.Error()
		if errors.Is(err, power.ErrRefused) {
			e.Result = "refused"
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if aerr := m.Store.Audit(actx, &e); aerr != nil {
		m.Log.Error("audit", "action", action, "target", target, "err", aerr)
	}
	if m.OnAudit != nil {
		m.OnAudit(e)
	}
}

func fieldErr(field, reason string) error { return &store.FieldError{Field: field, Reason: reason} }

// checkName refuses, as a bad request, a name that no machine, enclosure or
// group can have (the inventory's rule): it is not looked up.
func checkName(field, name string) error {
	if r := inventory.CheckName(name); r != "" {
		return fieldErr(field, fmt.Sprintf("%q %s", name, r))
	}
	return nil
}

// ChannelView is one OOB channel as the API shows it: the account (never the
// password), its state and, when it is not Connectable, the remedy.
type ChannelView struct {
	Account store.Account      `json:"account"`
	State   store.ChannelState `json:"state"`
	Remedy  string             `json:"remedy,omitempty"`
	// Security holds the findings of the BMC's latest complete security
	// audit; any makes the channel Insecure.
	Security []audit.Finding `json:"security_findings,omitempty"`
	// NextAttempt, after an edit of the credentials that did not earn an
	// immediate login (the lockout guard allows one per interval), is
	// when the next login is.
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	// StaleSince: no live instance serves the machine's zone; the state
	// is the last one known, not a current one (docs/scale-out.md).
	StaleSince *time.Time `json:"stale_since,omitempty"`
}

// MachineView is a machine with its channels.
type MachineView struct {
	store.Machine
	Channels []ChannelView `json:"channels"`
}

// Machines lists machines with their channels' current states.
func (m *Manager) Machines(ctx context.Context, f store.MachineFilter, p store.Page) ([]MachineView, error) {
	if pg, ok := m.Store.(pager); ok && p.Limit > 0 {
		ms, accts, stored, err := pg.MachinePage(ctx, f, p)
		if err != nil {
			return nil, err
		}
		return m.views(ms, accts, stored), nil
	}
	ms, err := m.Store.Machines(ctx, f, p)
	if err != nil {
		return nil, err
	}
	af := f
	if p.Limit > 0 {
		// The accounts of this page's machines only: O(page), not O(fleet).
		af = store.MachineFilter{Names: make([]string, len(ms))}
		for i, mc := range ms {
			af.Names[i] = mc.Name
		}
	}
	accts, err := m.Store.Accounts(ctx, af, store.Page{})
	if err != nil {
		return nil, err
	}
	byMachine := map[int64][]store.Account{}
	for _, a := range accts {
		byMachine[a.MachineID] = append(byMachine[a.MachineID], a)
	}
	var snap map[int64]store.ChannelState
	if p.Limit > 0 {
		// The page's channels only: a copy of the whole monitor (every
		// channel, under its lock) per page made a page cost O(fleet)
		// (bench/api: p99 1.3 s at 5,000 machines and 50 clients).
		snap = make(map[int64]store.ChannelState, len(accts))
		for _, a := range accts {
			if cs, ok := m.Monitor.Get(a.ID); ok {
				snap[a.ID] = cs
			}
		}
	} else {
		snap = m.Monitor.Snapshot()
	}
	m.storedStates(ctx, accts, snap)
	unwatched := m.unwatched()
	out := make([]MachineView, 0, len(ms))
	for _, mc := range ms {
		v := MachineView{Machine: mc, Channels: []ChannelView{}}
		for _, a := range byMachine[mc.ID] {
			v.Channels = append(v.Channels, m.channelView(mc.Name, a, snap[a.ID]))
		}
		markStale(&v, unwatched)
		out = append(out, v)
	}
	return out, nil
}

// pager is a store that lists a page of machines with their accounts and
// stored states in one query (sqlstore.MachinePage).
type pager interface {
	MachinePage(ctx context.Context, f store.MachineFilter, p store.Page) ([]store.Machine, []store.Account, map[int64]store.ChannelState, error)
}

// views are the machines ms with their accounts accts, each channel in the
// state this instance's monitor holds, else the stored one.
func (m *Manager) views(ms []store.Machine, accts []store.Account, stored map[int64]store.ChannelState) []MachineView {
	unwatched := m.unwatched()
	out := make([]MachineView, 0, len(ms))
	chans := make([]ChannelView, len(accts)) // every machine's, in one array
	i := 0                                   // accts are in machine order
	for _, mc := range ms {
		n := 0
		for i+n < len(accts) && accts[i+n].MachineID == mc.ID {
			n++
		}
		v := MachineView{Machine: mc, Channels: chans[i : i : i+n]}
		for ; i < len(accts) && accts[i].MachineID == mc.ID; i++ {
			a := accts[i]
			cs, ok := m.Monitor.Get(a.ID)
			if !ok {
				cs = stored[a.ID] // checked by another instance (docs/scale-out.md)
			}
			v.Channels = append(v.Channels, m.channelView(mc.Name, a, cs))
		}
		markStale(&v, unwatched)
		out = append(out, v)
	}
	return out
}

func (m *Manager) unwatched() map[string]time.Time {
	if m.Unwatched == nil {
		return nil
	}
	return m.Unwatched()
}

// markStale marks the channels of a machine whose zone no live instance
// serves.
func markStale(v *MachineView, unwatched map[string]time.Time) {
	since, ok := unwatched[store.ZoneOf(v.Machine)]
	if !ok {
		return
	}
	for i := range v.Channels {
		t := since
		if c := v.Channels[i].State.CheckedAt; !c.IsZero() && c.Before(t) {
			t = c // the state is as of the last check
		}
		v.Channels[i].StaleSince = &t
	}
}

// storedStates adds to snap the stored states of the accounts this
// instance's monitor does not check: with several instances on one
// database, another instance checks them and every instance answers alike
// from the database (docs/scale-out.md).
func (m *Manager) storedStates(ctx context.Context, accts []store.Account, snap map[int64]store.ChannelState) {
	sb, ok := m.Store.(interface {
		StatesOf(ctx context.Context, ids []int64) (map[int64]store.ChannelState, error)
	})
	if !ok {
		return
	}
	var missing []int64
	for _, a := range accts {
		if _, ok := snap[a.ID]; !ok {
			missing = append(missing, a.ID)
		}
	}
	if len(missing) == 0 {
		return
	}
	stored, err := sb.StatesOf(ctx, missing)
	if err != nil {
		m.Log.Warn("stored states", "err", err)
		return
	}
	for id, cs := range stored {
		snap[id] = cs
	}
}

func (m *Manager) channelView(machine string, a store.Account, cs store.ChannelState) ChannelView {
	a.Password = nil
	if cs.State == "" {
		cs.State, cs.AccountID = state.Unknown, a.ID
	}
	v := ChannelView{Account: a, State: cs}
	v.Remedy = state.RemedyFor(cs.State, cs.Reason, machine, a.ID)
	m.mergeSecurity(&v)
	return v
}

// Machine returns one machine with its channels, evidence included.
func (m *Manager) Machine(ctx context.Context, name string) (MachineView, error) {
	mc, err := m.Store.Machine(ctx, name)
	if err != nil {
		return MachineView{}, err
	}
	accts, err := m.Store.AccountsOf(ctx, mc.ID)
	if err != nil {
		return MachineView{}, err
	}
	v := MachineView{Machine: mc, Channels: []ChannelView{}}
	for _, a := range accts {
		cs, ok := m.Monitor.Get(a.ID)
		if stored, err := m.Store.State(ctx, a.ID); err == nil {
			if !ok {
				cs = stored // checked by another instance (docs/scale-out.md)
			}
			cs.Evidence = stored.Evidence
		}
		v.Channels = append(v.Channels, m.channelView(mc.Name, a, cs))
	}
	markStale(&v, m.unwatched())
	return v, nil
}

// MachineInput creates a machine, optionally with its first OOB account.
type MachineInput struct {
	Name      string   `json:"name"`
	GUID      string   `json:"guid,omitempty"`
	Group     string   `json:"group,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Role      string   `json:"role,omitempty"`
	Spare     bool     `json:"spare,omitempty"`
	Enclosure string   `json:"enclosure,omitempty"`
	Slot      int      `json:"slot,omitempty"`
	// Zone: only instances serving it check the machine (docs/scale-out.md).
	Zone string `json:"zone,omitempty"`
	// Register: pin the GUID from the first Connectable check (master
	// machine registration). Implied when GUID is empty.
	Register bool          `json:"register,omitempty"`
	Account  *AccountInput `json:"account,omitempty"`
}

// AccountInput creates or edits an OOB account. On edits, nil/zero fields
// keep their value.
type AccountInput struct {
	Machine     string  `json:"machine,omitempty"`
	Protocol    string  `json:"protocol,omitempty"`
	Address     string  `json:"address,omitempty"`
	Port        int     `json:"port,omitempty"`
	User        *string `json:"user,omitempty"`
	Password    *string `json:"password,omitempty"`
	Privilege   string  `json:"privilege,omitempty"`
	CipherSuite *int    `json:"cipher_suite,omitempty"`
	// KeepPassword (admin, edits only): keep the stored password when the
	// protocol, address or port changes, without giving it again.
	KeepPassword bool `json:"keep_password,omitempty"`
	// RedfishAuth: auto (""), session or basic.
	RedfishAuth *string `json:"redfish_auth,omitempty"`
	// CipherSuites replaces the allow-list ([] restores the default).
	CipherSuites *[]int `json:"cipher_suites,omitempty"`
}

// validate checks a machine (and its account) with the inventory file's
// rules, so the API refuses exactly what an import would.
func validate(mc store.Machine, a *store.Account) error {
	im := inventory.Machine{Name: mc.Name, GUID: mc.GUID, Address: "127.0.0.1", Enclosure: mc.Enclosure, Slot: mc.Slot, Zone: mc.Zone,
		Group: mc.Group, Tags: mc.Tags, Role: mc.Role}
	if a != nil {
		im.Address, im.Port, im.User, im.Protocol, im.CipherSuite, im.Privilege = a.Address, a.Port, a.User, a.Protocol, a.CipherSuite, a.Privilege
		im.RedfishAuth = a.RedfishAuth
		for _, n := range a.CipherSuites {
			im.CipherSuites = append(im.CipherSuites, strconv.Itoa(n))
		}
	}
	err := (&inventory.Inventory{Machines: []inventory.Machine{im}}).Validate()
	var es inventory.Errors
	if errors.As(err, &es) && len(es) > 0 {
		fe := es[0]
		return &store.FieldError{Record: mc.Name, Field: fe.Field, Reason: reasonWithValue(fe)}
	}
	return err
}

// reasonWithValue is an inventory problem's reason quoting the value it is
// about ("99999" is not a port), as the inventory's own messages do.
func reasonWithValue(fe *inventory.FieldError) string {
	if fe.Value != "" {
		return fmt.Sprintf("%q %s", fe.Value, fe.Reason)
	}
	return fe.Reason
}

func canonicalGUID(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	g, err := guid.Parse(s)
	if err != nil {
		return "", fieldErr("guid", err.Error())
	}
	return g.RFC4122(), nil
}

// zoneOf is a machine's zone: the one it names, else the one its BMC
// address falls in (ZoneFor).
func (m *Manager) zoneOf(named, address string) string {
	if named != "" || m.ZoneFor == nil {
		return named
	}
	return m.ZoneFor(address)
}

// AddMachine creates a machine and, when given, its OOB account, and starts
// monitoring it.
func (m *Manager) AddMachine(ctx context.Context, actor Actor, in MachineInput) (mv MachineView, err error) {
	defer func() { m.audit(ctx, actor, "machine.add", in.Name, "", err) }()
	if err := m.require(actor, store.RoleOperator, "adding a machine"); err != nil {
		return MachineView{}, err
	}
	g, err := canonicalGUID(in.GUID)
	if err != nil {
		return MachineView{}, err
	}
	mc := store.Machine{Name: in.Name, GUID: g, Group: in.Group, Tags: in.Tags, Role: in.Role, Spare: in.Spare,
		Enclosure: in.Enclosure, Slot: in.Slot, Registering: g == "", Zone: in.Zone}
	if in.Account != nil {
		mc.Zone = m.zoneOf(in.Zone, in.Account.Address)
	}
	var acct *store.Account
	if in.Account != nil {
		if in.Account.Machine != "" {
			return MachineView{}, fieldErr("account.machine", "not allowed here: the account belongs to the machine being created")
		}
		if in.Account.KeepPassword {
			return MachineView{}, fieldErr("account.keep_password", "only an edit that moves an account keeps its password")
		}
		a, err := accountFrom(store.Account{}, *in.Account)
		if err != nil {
			return MachineView{}, err
		}
		acct = &a
	}
	if err := validate(mc, acct); err != nil {
		return MachineView{}, err
	}
	if err := m.Store.AddMachine(ctx, &mc); err != nil {
		return MachineView{}, err
	}
	if acct != nil {
		acct.MachineID = mc.ID
		if err := m.Store.AddAccount(ctx, acct); err != nil {
			_ = m.Store.DeleteMachine(context.WithoutCancel(ctx), mc.Name)
			return MachineView{}, err
		}
		if err := m.Monitor.Refresh(ctx, acct.ID); err != nil {
			return MachineView{}, err
		}
	}
	return m.Machine(ctx, mc.Name)
}

func accountFrom(a store.Account, in AccountInput) (store.Account, error) {
	if in.Protocol != "" {
		a.Protocol = strings.ToLower(in.Protocol)
	}
	if a.Protocol == "" {
		a.Protocol = inventory.ProtocolIPMI
	}
	if in.Address != "" {
		a.Address = in.Address
	}
	if in.Port != 0 {
		a.Port = in.Port
	}
	a.Port = protocol.Protocol(a.Protocol).Port(a.Port)
	if in.User != nil {
		a.User = *in.User
	}
	if in.Password != nil {
		if len(*in.Password) > 20 && a.Protocol == inventory.ProtocolIPMI {
			return a, fieldErr("password", "IPMI 2.0 passwords are at most 20 bytes")
		}
		a.Password = []byte(*in.Password)
	}
	if in.Privilege != "" {
		p := strings.ToLower(in.Privilege)
		if p == "admin" {
			p = "administrator"
		}
		if p != "user" && p != "operator" && p != "administrator" {
			return a, fieldErr("privilege", fmt.Sprintf("%q is not user, operator or administrator", in.Privilege))
		}
		a.Privilege = p
	}
	if a.Privilege == "" {
		a.Privilege = "administrator"
	}
	if in.CipherSuite != nil {
		a.CipherSuite = *in.CipherSuite
	}
	if in.RedfishAuth != nil {
		ra, err := redfish.ParseAuth(*in.RedfishAuth)
		if err != nil {
			return a, fieldErr("redfish_auth", err.Error())
		}
		a.RedfishAuth = string(ra)
		if ra == redfish.AuthAuto {
			a.RedfishAuth = ""
		}
	}
	if in.CipherSuites != nil {
		a.CipherSuites = slices.Clone(*in.CipherSuites)
	}
	if a.Address == "" {
		return a, fieldErr("address", "required")
	}
	return a, nil
}

// MachinePatch edits a machine; nil fields keep their value.
type MachinePatch struct {
	Group     *string   `json:"group,omitempty"`
	Tags      *[]string `json:"tags,omitempty"`
	Role      *string   `json:"role,omitempty"`
	Spare     *bool     `json:"spare,omitempty"`
	Enclosure *string   `json:"enclosure,omitempty"`
	Slot      *int      `json:"slot,omitempty"`
	// Zone moves the machine to the instances serving that zone
	// (docs/scale-out.md; "" or "default": the default zone).
	Zone *string `json:"zone,omitempty"`
}

// UpdateMachine edits a machine's grouping. Its GUID changes only through
// Adopt (admin).
func (m *Manager) UpdateMachine(ctx context.Context, actor Actor, name string, p MachinePatch) (mv MachineView, err error) {
	defer func() { m.audit(ctx, actor, "machine.update", name, "", err) }()
	if err := m.require(actor, store.RoleOperator, "editing a machine"); err != nil {
		return MachineView{}, err
	}
	mc, err := m.Store.Machine(ctx, name)
	if err != nil {
		return MachineView{}, err
	}
	if p.Group != nil {
		mc.Group = *p.Group
	}
	if p.Tags != nil {
		mc.Tags = *p.Tags
	}
	if p.Role != nil {
		mc.Role = *p.Role
	}
	if p.Spare != nil {
		mc.Spare = *p.Spare
	}
	if p.Enclosure != nil {
		mc.Enclosure = *p.Enclosure
	}
	if p.Slot != nil {
		mc.Slot = *p.Slot
	}
	oldZone := mc.Zone
	if p.Zone != nil {
		mc.Zone = *p.Zone
	}
	if err := validate(mc, nil); err != nil {
		return MachineView{}, err
	}
	if err := m.Store.UpdateMachine(ctx, &mc); err != nil {
		return MachineView{}, err
	}
	if mc.Zone != oldZone {
		// Another zone may mean another instance checks it.
		if err := m.Monitor.RefreshMachine(ctx, mc.ID); err != nil {
			return MachineView{}, err
		}
	}
	return m.Machine(ctx, name)
}

// DeleteMachine removes a machine, its accounts and their history (admin).
func (m *Manager) DeleteMachine(ctx context.Context, actor Actor, name string) (err error) {
	defer func() { m.audit(ctx, actor, "machine.delete", name, "", err) }()
	if err := m.require(actor, store.RoleAdmin, "deleting a machine"); err != nil {
		return err
	}
	mc, err := m.Store.Machine(ctx, name)
	if err != nil {
		return err
	}
	accts, err := m.Store.AccountsOf(ctx, mc.ID)
	if err != nil {
		return err
	}
	if err := m.Store.DeleteMachine(ctx, name); err != nil {
		return err
	}
	for _, a := range accts {
		m.Monitor.Remove(a.ID)
	}
	return nil
}

// AddAccount adds an OOB account to a machine and checks it at once.
func (m *Manager) AddAccount(ctx context.Context, actor Actor, in AccountInput) (a store.Account, err error) {
	defer func() { m.audit(ctx, actor, "account.add", in.Machine, in.Address, err) }()
	if err := m.require(actor, store.RoleOperator, "adding an account"); err != nil {
		return store.Account{}, err
	}
	if in.Machine == "" {
		return store.Account{}, fieldErr("machine", "required")
	}
	if err := checkName("machine", in.Machine); err != nil {
		return store.Account{}, err
	}
	mc, err := m.Store.Machine(ctx, in.Machine)
	if err != nil {
		return store.Account{}, &store.FieldError{Field: "machine", Reason: fmt.Sprintf("no machine named %q", in.Machine), Err: store.ErrNotFound}
	}
	if in.KeepPassword {
		return store.Account{}, fieldErr("keep_password", "only an edit that moves an account keeps its password")
	}
	a, err = accountFrom(store.Account{MachineID: mc.ID}, in)
	if err != nil {
		return a, err
	}
	if err := validate(mc, &a); err != nil {
		return store.Account{}, err
	}
	if err := m.Store.AddAccount(ctx, &a); err != nil {
		return store.Account{}, err
	}
	a.Password = nil
	return a, m.Monitor.Refresh(ctx, a.ID)
}

// UpdateAccount edits an account. The password is bound to where it is
// sent (docs/security.md): a change of protocol, address or port of an
// account that holds a password needs the password again in the same
// request, or an admin and KeepPassword. Every changed field is audited
// with its old and new value (never the password). A changed user or
// password makes one immediate login at most per lockout-guard interval;
// an edit that changes neither makes none.
func (m *Manager) UpdateAccount(ctx context.Context, actor Actor, id int64, in AccountInput) (a store.Account, err error) {
	detail := []string{}
	defer func() { m.audit(ctx, actor, "account.update", a.Machine, strings.Join(detail, ", "), err) }()
	if err := m.require(actor, store.RoleOperator, "editing an account"); err != nil {
		return store.Account{}, err
	}
	old, err := m.Store.Account(ctx, id)
	if err != nil {
		return store.Account{}, err
	}
	a.Machine = old.Machine
	if err := checkAccountInput(in); err != nil {
		return store.Account{}, err
	}
	na, err := accountFrom(old, in)
	if err != nil {
		return store.Account{}, err
	}
	mc, err := m.Store.MachineByID(ctx, na.MachineID)
	if err != nil {
		return store.Account{}, err
	}
	if err := validate(mc, &na); err != nil {
		return store.Account{}, err
	}
	moved := movedFrom(old, na)
	if err := passwordMayMove(actor, old, moved, in.Password != nil, in.KeepPassword); err != nil {
		return store.Account{}, err
	}
	detail = accountChanges(old, na)
	if moved != "" && len(old.Password) > 0 && in.Password == nil {
		detail = append(detail, "password kept for the new "+moved+" (keep_password, by an admin)")
	}
	// Fence the channel while the edit is written: no check with the old
	// account may land after it (Refresh lifts the fence).
	m.Monitor.BeginEdit(id)
	if err := m.Store.UpdateAccount(ctx, &na); err != nil {
		m.Monitor.EndEdit(id)
		return store.Account{}, err
	}
	if moved != "" && na.Protocol == inventory.ProtocolRedfish {
		// A new address's certificate is never trusted on first use:
		// the channel shows it (Invalid / cert_changed) until an admin
		// accepts it.
		if err := m.Store.PinCert(ctx, na.Machine, probe.AwaitingPin); err != nil {
			m.Monitor.EndEdit(id)
			return store.Account{}, err
		}
		detail = append(detail, "certificate pin cleared: the new address's certificate must be accepted (accept-cert)")
	}
	na.Password = nil
	return na, m.Monitor.Refresh(ctx, id)
}

// checkAccountInput refuses contradictory or hostile account input before
// anything is read.
func checkAccountInput(in AccountInput) error {
	if in.KeepPassword && in.Password != nil {
		return fieldErr("keep_password", "give either a password or keep_password, not both")
	}
	if in.Password != nil && strings.IndexFunc(*in.Password, func(r rune) bool { return r == 0 }) >= 0 {
		return fieldErr("password", "contains a NUL character")
	}
	return nil
}

// movedFrom names what of the endpoint a password is bound to changed
// ("" when nothing did): protocol, address, port.
func movedFrom(old, na store.Account) string {
	var parts []string
	if old.Protocol != na.Protocol {
		parts = append(parts, "protocol")
	}
	if old.Address != na.Address {
		parts = append(parts, "address")
	}
	if old.Port != na.Port {
		parts = append(parts, "port")
	}
	return strings.Join(parts, " and ")
}

// ErrPasswordBound: an edit would send a stored password somewhere else
// without it being given again.
var ErrPasswordBound = errors.New("the stored password is bound to the account's protocol, address and port")

// passwordMayMove is the binding rule: the stored password follows a new
// protocol, address or port only when given again in the same request, or
// when an admin asks to keep it (keep_password).
func passwordMayMove(actor Actor, old store.Account, moved string, given, keep bool) error {
	if moved == "" {
		return nil
	}
	if len(old.Password) == 0 || given {
		return nil
	}
	if keep {
		if err := (&Manager{}).require(actor, store.RoleAdmin, "keeping the stored password for a new "+moved+" (keep_password)"); err != nil {
			return &store.FieldError{Field: "keep_password", Reason: err.Error(), Err: ErrForbidden}
		}
		return nil
	}
	return &store.FieldError{Field: "password",
		Reason: fmt.Sprintf("required: the %s changes and the stored password is bound to the old one; give the password again (or, as an admin, keep_password: true)", moved),
		Err:    ErrPasswordBound}
}

// accountChanges lists every changed field of an account with its old and
// new value, the password only as "changed".
func accountChanges(old, na store.Account) []string {
	var d []string
	if old.Protocol != na.Protocol {
		d = append(d, fmt.Sprintf("protocol %s → %s", old.Protocol, na.Protocol))
	}
	if old.Address != na.Address || old.Port != na.Port {
		d = append(d, gather.AddressChange(hostPort(old.Address, old.Port), hostPort(na.Address, na.Port)))
	}
	if old.User != na.User {
		d = append(d, fmt.Sprintf("user %q → %q", old.User, na.User))
	}
	if !slices.Equal(old.Password, na.Password) {
		d = append(d, "password changed")
	}
	if old.Privilege != na.Privilege {
		d = append(d, fmt.Sprintf("privilege %s → %s", old.Privilege, na.Privilege))
	}
	if old.CipherSuite != na.CipherSuite {
		d = append(d, fmt.Sprintf("cipher suite %d → %d", old.CipherSuite, na.CipherSuite))
	}
	return d
}

// DeleteAccount removes an account and its history (admin).
func (m *Manager) DeleteAccount(ctx context.Context, actor Actor, id int64) (err error) {
	target := fmt.Sprint("account ", id)
	defer func() { m.audit(ctx, actor, "account.delete", target, "", err) }()
	if err := m.require(actor, store.RoleAdmin, "deleting an account"); err != nil {
		return err
	}
	if a, err := m.Store.Account(ctx, id); err == nil {
		target = a.Machine
	}
	if err := m.Store.DeleteAccount(ctx, id); err != nil {
		return err
	}
	m.Monitor.Remove(id)
	return nil
}

// accountsFor resolves machine names and/or a group to their accounts.
func (m *Manager) resolve(ctx context.Context, names []string, group string) ([]store.Machine, error) {
	if len(names) == 0 && group == "" {
		return nil, fieldErr("machines", "name at least one machine or a group")
	}
	for _, n := range names {
		if err := checkName("machines", n); err != nil {
			return nil, err
		}
	}
	if group != "" {
		if err := checkName("group", group); err != nil {
			return nil, err
		}
	}
	var out []store.Machine
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		mc, err := m.Store.Machine(ctx, n)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, &store.FieldError{Field: "machines", Reason: fmt.Sprintf("no machine named %q", n), Err: store.ErrNotFound}
			}
			return nil, err
		}
		out = append(out, mc)
	}
	if group != "" {
		ms, err := m.Store.Machines(ctx, store.MachineFilter{Group: group}, store.Page{})
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			return nil, &store.FieldError{Field: "group", Reason: fmt.Sprintf("no machine in group %q", group), Err: store.ErrNotFound}
		}
		for _, mc := range ms {
			if !seen[mc.Name] {
				seen[mc.Name] = true
				out = append(out, mc)
			}
		}
	}
	return out, nil
}

// CheckResult is a fresh check of one machine's channel.
type CheckResult struct {
	Machine string `json:"machine"`
	ChannelView
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// MarshalJSON leaves out the channel of a machine without an OOB account
// (there is none: no account, no state).
func (c CheckResult) MarshalJSON() ([]byte, error) {
	if c.Account.ID == 0 {
		return json.Marshal(struct {
			Machine string `json:"machine"`
			Skipped string `json:"skipped,omitempty"`
			Error   string `json:"error,omitempty"`
		}{c.Machine, c.Skipped, c.Error})
	}
	type plain CheckResult
	return json.Marshal(plain(c))
}

// CheckNow checks the named machines (and/or a group) now and returns the
// fresh states (the seed's "connection check" button).
func (m *Manager) CheckNow(ctx context.Context, actor Actor, names []string, group string) ([]CheckResult, error) {
	if err := m.require(actor, store.RoleOperator, "check now"); err != nil {
		return nil, err
	}
	ms, err := m.resolve(ctx, names, group)
	if err != nil {
		return nil, err
	}
	var out []CheckResult
	var ids []int64
	var accts []store.Account
	for _, mc := range ms {
		as, err := m.Store.AccountsOf(ctx, mc.ID)
		if err != nil {
			return nil, err
		}
		if len(as) == 0 {
			out = append(out, CheckResult{Machine: mc.Name, Error: "no OOB account: add one (lightsout accounts add)"})
		}
		for _, a := range as {
			ids = append(ids, a.ID)
			accts = append(accts, a)
		}
	}
	res, _ := m.Monitor.CheckNow(ctx, ids)
	for i, r := range res {
		cr := CheckResult{Machine: accts[i].Machine, ChannelView: m.channelView(accts[i].Machine, accts[i], r.State), Skipped: r.Skipped}
		if stored, err := m.Store.State(ctx, accts[i].ID); err == nil {
			cr.State.Evidence = stored.Evidence
		}
		out = append(out, cr)
	}
	return out, nil
}

// PowerRequest is a bulk power or identify operation.
type PowerRequest struct {
	Action   power.Action `json:"action"`
	Machines []string     `json:"machines,omitempty"`
	Group    string       `json:"group,omitempty"`
	Stagger  power.Stagger
	// AgentFallback, with action soft, follows a soft-off up (fallback.go):
	// if the machine still reads on this long after the BMC accepted it,
	// the agent enrolled under the machine's name is asked to run
	// os-shutdown, and the power is watched as long again. 0: off; at most
	// MaxAgentFallback. Needs the admin role (os-shutdown does).
	AgentFallback time.Duration `json:"agent_fallback,omitempty"`
}

// Power runs a power action on machines in staggered batches, calling
// progress with each machine's result as it completes. Each machine is
// refused (not attempted) unless its OOB channel is Connectable; the
// refusal says the state, since when and the remedy. Every machine's
// operation is audited.
func (m *Manager) Power(ctx context.Context, actor Actor, req PowerRequest, progress func(power.Result)) ([]power.Result, error) {
	need := store.RoleOperator
	if req.Action.ReadOnly() {
		need = store.RoleViewer
	}
	if err := m.require(actor, need, "power "+string(req.Action)); err != nil {
		return nil, err
	}
	if err := checkFallback(req); err != nil {
		return nil, err
	}
	if req.AgentFallback > 0 {
		if err := m.require(actor, store.RoleAdmin, "power soft with an agent fallback (it may run os-shutdown)"); err != nil {
			return nil, err
		}
	}
	ms, err := m.resolve(ctx, req.Machines, req.Group)
	if err != nil {
		return nil, err
	}
	if req.AgentFallback > 0 {
		return m.softOffWithFallback(ctx, actor, ms, req.Stagger, req.AgentFallback, progress), nil
	}
	return m.power(ctx, actor, req.Action, ms, req.Stagger, "power."+string(req.Action), progress), nil
}

func (m *Manager) power(ctx context.Context, actor Actor, a power.Action, ms []store.Machine, s power.Stagger, action string, progress func(power.Result)) []power.Result {
	items := make([]power.Item, len(ms))
	for i, mc := range ms {
		var lamp string // identify-status: the lamp's state
		items[i] = power.Item{Machine: mc.Name, Do: func(ctx context.Context) (p string, err error) {
			defer func() {
				detail := ""
				if p != "" {
					detail = "power " + p
				}
				if lamp != "" {
					detail = "identify " + lamp
				}
				m.audit(ctx, actor, action, mc.Name, detail, err)
			}()
			ch, acct, err := m.channelOf(ctx, mc)
			if err != nil {
				return "", err
			}
			octx, cancel := context.WithTimeout(ctx, m.OpTimeout)
			defer cancel()
			if a == power.IdentifyStatus {
				lamp, err = power.IdentifyState(octx, ch)
				return "", err
			}
			p, err = power.Do(octx, ch, a)
			if err == nil && m.Monitor != nil {
				// Before the audit entry (and its power.done event), so
				// whoever reacts to the event reads the new power.
				m.Monitor.NotePower(acct, p)
			}
			return p, err
		}}
		if a == power.IdentifyStatus {
			do := items[i].Do
			items[i].Op = func(ctx context.Context) (power.Outcome, error) {
				_, err := do(ctx)
				if err != nil {
					return power.Outcome{}, err
				}
				return power.Outcome{Detail: "identify " + lamp}, nil
			}
		}
		if a == power.SoftOff {
			// Say that a soft-off still reading on was only requested:
			// the OS decides (agent_fallback follows it up).
			do := items[i].Do
			items[i].Op = func(ctx context.Context) (power.Outcome, error) {
				p, err := do(ctx)
				o := power.Outcome{Power: p}
				if err == nil && p == "on" {
					o.Detail = softOffRequested
				}
				return o, err
			}
		}
	}
	return power.Run(ctx, a, items, s, progress)
}

// channelFor picks the machine's usable OOB channel, or refuses.
func (m *Manager) channelFor(ctx context.Context, mc store.Machine) (power.Channel, error) {
	ch, _, err := m.channelOf(ctx, mc)
	return ch, err
}

// channelOf is channelFor with the ID of the channel's account.
func (m *Manager) channelOf(ctx context.Context, mc store.Machine) (power.Channel, int64, error) {
	accts, err := m.Store.AccountsOf(ctx, mc.ID)
	if err != nil {
		return nil, 0, err
	}
	if len(accts) == 0 {
		return nil, 0, &power.RefusedError{Machine: mc.Name, Detail: "the machine has no OOB account; add one (lightsout accounts add)"}
	}
	var refusal error
	for _, a := range accts {
		cs, _ := m.Monitor.Get(a.ID)
		if err := power.Gate(mc.Name, cs); err != nil {
			if refusal == nil {
				refusal = err
			}
			continue
		}
		switch a.Protocol {
		case inventory.ProtocolIPMI:
			addr, err := probe.Resolve(ctx, a.Address, a.Port)
			if err != nil {
				return nil, 0, err
			}
			return power.IPMI{Engine: m.Engine, Addr: netip.AddrPortFrom(addr.Addr(), addr.Port()), Creds: ipmi.Credentials{
				User: a.User, Password: a.Password, Privilege: ipmi.PrivilegeOf(a.Privilege), Suites: m.suitesOf(a)}}, a.ID, nil
		case inventory.ProtocolRedfish:
			addr, err := probe.Resolve(ctx, a.Address, a.Port)
			if err != nil {
				return nil, 0, err
			}
			return power.Redfish{Transport: m.Redfish, Addr: netip.AddrPortFrom(addr.Addr(), addr.Port()),
				User: a.User, Password: a.Password, Auth: redfish.Auth(a.RedfishAuth)}, a.ID, nil
		default:
			refusal = &power.RefusedError{Machine: mc.Name, Detail: fmt.Sprintf("power over %s is not supported yet", a.Protocol)}
		}
	}
	return nil, 0, refusal
}

// suitesOf is the allow-list of an account: its pinned suite, its own
// list, or the fleet-wide one.
func (m *Manager) suitesOf(a store.Account) []ipmi.CipherSuite {
	if a.CipherSuite != 0 {
		return []ipmi.CipherSuite{ipmi.CipherSuite(a.CipherSuite)}
	}
	if len(a.CipherSuites) == 0 {
		return m.Suites
	}
	out := make([]ipmi.CipherSuite, len(a.CipherSuites))
	for i, n := range a.CipherSuites {
		out[i] = ipmi.CipherSuite(n)
	}
	return out
}

// PowerGate says whether a power or identify operation on the machine
// would be let through now, by the rule Power applies (channelOf): some
// channel passes power.Gate; else the first channel's refusal (state,
// since, remedy), or "no OOB account". The console shows its buttons only
// where this is nil, and the refusal in their place.
func PowerGate(mv MachineView) error {
	if len(mv.Channels) == 0 {
		return &power.RefusedError{Machine: mv.Name, Detail: "the machine has no OOB account; add one (lightsout accounts add)"}
	}
	var refusal error
	for _, ch := range mv.Channels {
		cs := ch.State
		if cs.AccountID == 0 {
			cs.AccountID = ch.Account.ID
		}
		err := power.Gate(mv.Name, cs)
		if err == nil {
			return nil
		}
		if refusal == nil {
			refusal = err
		}
	}
	return refusal
}
