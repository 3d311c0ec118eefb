package gather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// The executor against a real store (SQLite) and simulated BMCs over real
// UDP: what it reads from the history, what it may not do (log in to a
// refused account), and its own measurements when no RateSource or
// FleetSource is given. The trees' branches end to end are in
// internal/api (diag_test.go).

type env struct {
	st    *sqlstore.DB
	fleet *sim.Fleet
	eng   *ipmi.Engine
	x     *Executor
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, sim.Config{Count: 4, Seed: 9, Password: "gather-pass"})
}

// newEnvWith starts cfg's fleet (its password must be gather-pass) and
// stores its machines, enclosures and accounts.
func newEnvWith(t *testing.T, cfg sim.Config) *env {
	t.Helper()
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "l.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var f *sim.Fleet
	for attempt := 0; ; attempt++ {
		if os.Geteuid() == 0 {
			cfg.BaseAddr = netip.AddrFrom4([4]byte{127, 78, byte(os.Getpid()%200 + attempt + 1), 1}).String()
		} else {
			cfg.BaseAddr, cfg.BasePort = "127.0.0.1", 23000+(os.Getpid()*7+attempt*11)%20000
		}
		if f, err = sim.New(cfg); err == nil || attempt > 10 {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	eng, err := ipmi.New(ipmi.Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	inv := f.Inventory("")
	for _, en := range inv.Enclosures {
		se := store.Enclosure{Name: en.Name, Address: en.Address, Port: en.Port, User: en.User, Password: []byte("gather-pass"), Slots: en.Slots}
		if err := st.AddEnclosure(ctx, &se); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range inv.Machines {
		mc := store.Machine{Name: m.Name, GUID: m.GUID, Enclosure: m.Enclosure, Slot: m.Slot}
		if err := st.AddMachine(ctx, &mc); err != nil {
			t.Fatal(err)
		}
		a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: m.Address, Port: m.Port, User: m.User, Password: []byte("gather-pass")}
		if err := st.AddAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	return &env{st: st, fleet: f, eng: eng, x: &Executor{Store: st, Engine: eng, Timeout: time.Second}}
}

func (e *env) machine(t *testing.T, name string) (store.Machine, store.Account) {
	t.Helper()
	m, err := e.st.Machine(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	as, err := e.st.AccountsOf(context.Background(), m.ID)
	if err != nil || len(as) != 1 {
		t.Fatal(err)
	}
	return m, as[0]
}

func TestExecutorLockoutGuard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.fleet.SetFaults("bmc-00001", sim.Faults{WrongPassword: true})
	m, a := e.machine(t, "bmc-00001")
	ev, _ := json.Marshal(probe.Evidence{RMCPStatus: 0, FailedStage: "rakp1_2"})
	refused := time.Now() // after the account was created: its credentials have not changed since
	if err := e.st.SaveState(ctx, store.ChannelState{AccountID: a.ID, State: state.NotAuthenticated, Reason: state.ReasonWrongPassword,
		Message: "refused", Since: refused, CheckedAt: refused, Evidence: ev}, &store.Transition{From: state.Connectable, At: refused}); err != nil {
		t.Fatal(err)
	}
	b, _ := e.fleet.BMC("bmc-00001")
	before := b.Counters().AuthAttempts
	rep := e.x.Run(ctx, m, a)
	if rep.Facts.Fresh || !strings.Contains(rep.Facts.NotRetried, "not tried again before") || rep.Diagnosis.Cause != CausePasswordChanged {
		t.Fatalf("guarded run: fresh %v %q → %s", rep.Facts.Fresh, rep.Facts.NotRetried, rep.Diagnosis.Cause)
	}
	if n := b.Counters().AuthAttempts; n != before {
		t.Errorf("%d login attempts on a refused account", n-before)
	}
	if !rep.Facts.History.LeftConnectable || !rep.Facts.History.LastConnectable.Equal(refused.UTC().Round(0)) && !rep.Facts.History.LastConnectable.Equal(refused) {
		t.Errorf("history %+v", rep.Facts.History)
	}
	// After an edit of the credentials the account is tried again — an
	// edit right after the account was created counts too.
	a.CredentialsChangedAt = time.Now()
	if err := e.st.UpdateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	rep = e.x.Run(ctx, m, a)
	if !rep.Facts.Fresh || b.Counters().AuthAttempts == before || rep.Diagnosis.Cause != CausePasswordEditWrong {
		t.Errorf("after the edit: fresh %v → %s", rep.Facts.Fresh, rep.Diagnosis.Cause)
	}
}

func TestExecutorHistoryFromAudit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, a := e.machine(t, "bmc-00002")
	at := time.Now().Add(-time.Hour)
	for _, en := range []store.AuditEntry{
		{At: at, Actor: "ops", Action: "account.update", Target: m.Name, Detail: `user "a" → "admin", ` + AddressChange("10.9.9.9:623", hostPort(a.Address, a.Port)), Result: "ok"},
		{At: at.Add(time.Minute), Actor: "ops", Action: "account.update", Target: m.Name, Detail: AddressChange("10.1.1.1:623", "10.2.2.2:623"), Result: "failed"},
		{At: at.Add(2 * time.Minute), Actor: "ops", Action: "machine.adopt", Target: m.Name, Detail: "System GUID a → b", Result: "ok"},
	} {
		if err := e.st.Audit(ctx, &en); err != nil {
			t.Fatal(err)
		}
	}
	var h History
	e.x.history(ctx, m, a, store.ChannelState{State: state.Connectable, CheckedAt: at.Add(time.Hour)}, &h)
	if h.OldAddress != "10.9.9.9:623" || !h.AddressChangedAt.Equal(at.UTC().Round(0)) && !h.AddressChangedAt.Equal(at) ||
		h.HardwareChange != "the System GUID was adopted" || h.LastConnectable.IsZero() || h.LeftConnectable || !h.CredentialsChangedAt.IsZero() {
		t.Errorf("history %+v", h)
	}
}

func TestExecutorOwnMeasurements(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.fleet.SetFaults("bmc-00003", sim.Faults{Lossy: 0.3})
	m, a := e.machine(t, "bmc-00003")
	r := e.x.rates(ctx, m, a)
	if r.Err != "" || r.Requests != sampleRequests || !strings.Contains(r.Source, "sampled now") || r.Retransmits == 0 {
		t.Errorf("sampled rates %+v", r)
	}
	// Fleet spread from the stored states: the other three channels, one
	// of them NotResponding, share the subnet.
	var f Facts
	for i, name := range []string{"bmc-00001", "bmc-00002", "bmc-00004"} {
		_, oa := e.machine(t, name)
		st := store.ChannelState{AccountID: oa.ID, State: state.Connectable, Since: time.Now(), CheckedAt: time.Now()}
		if i == 0 {
			st.State = state.NotResponding
		}
		if err := e.st.SaveState(ctx, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	fl := e.x.fleet(ctx, m, a, f)
	if fl.Err != "" || len(fl.Spreads) != 1 || fl.Spreads[0].Dimension != "subnet" || fl.Spreads[0].Peers != 3 || fl.Spreads[0].Affected != 1 {
		t.Errorf("fleet %+v", fl)
	}
	if s := e.x.subnet(ctx, a); s.Peers != 3 || s.NotResponding != 1 {
		t.Errorf("subnet %+v", s)
	}
}

// stubRates and stubFleet are sources that know nothing of the channel.
type stubRates struct{}

func (stubRates) ChannelRates(context.Context, int64) (Rates, error) {
	return Rates{}, fmt.Errorf("%w: not checked yet", ErrNoFigures)
}

type stubFleet struct{ err error }

func (s stubFleet) Spread(context.Context, int64) ([]Spread, error) { return nil, s.err }

// TestExecutorSourceFallback: a source that has no figures for a channel
// (diag.ErrNoFigures) leaves the measurement to the executor; any other
// error is reported as the fact's error.
func TestExecutorSourceFallback(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, a := e.machine(t, "bmc-00001")
	e.x.Rates, e.x.Fleet = stubRates{}, stubFleet{fmt.Errorf("wrapped: %w", ErrNoFigures)}
	if r := e.x.rates(ctx, m, a); r.Err != "" || r.Requests != sampleRequests || !strings.Contains(r.Source, "sampled now") {
		t.Errorf("rates without figures: %+v", r)
	}
	_, oa := e.machine(t, "bmc-00002")
	if err := e.st.SaveState(ctx, store.ChannelState{AccountID: oa.ID, State: state.NotResponding, Since: time.Now(), CheckedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	if fl := e.x.fleet(ctx, m, a, Facts{}); fl.Err != "" || len(fl.Spreads) != 1 || fl.Spreads[0].Dimension != "subnet" || fl.Spreads[0].Affected != 1 {
		t.Errorf("fleet without figures: %+v", fl)
	}
	e.x.Fleet = stubFleet{errors.New("the correlator is away")}
	if fl := e.x.fleet(ctx, m, a, Facts{}); fl.Err != "the correlator is away" || len(fl.Spreads) != 0 {
		t.Errorf("fleet error: %+v", fl)
	}
}

// hiddenEnclosures is a store whose enclosures cannot be read: the
// executor then sees blades whose enclosure manager is not in the
// inventory. (Through the API every blade's enclosure is stored with an
// address, so this is the only way to reach that branch end to end.)
type hiddenEnclosures struct{ store.Store }

func (hiddenEnclosures) Enclosure(_ context.Context, name string) (store.Enclosure, error) {
	return store.Enclosure{}, fmt.Errorf("enclosure %q: %w", name, store.ErrNotFound)
}

// TestExecutorEnclosureNotInInventory: a silent blade whose enclosure
// manager the inventory does not hold is compared with its siblings only,
// pinged over real UDP.
func TestExecutorEnclosureNotInInventory(t *testing.T) {
	e := newEnvWith(t, sim.Config{Count: 4, Seed: 9, Password: "gather-pass", Enclosures: []sim.EnclosureConfig{{Name: "enc-h", Blades: 3}}})
	ctx := context.Background()
	e.x.Store = hiddenEnclosures{e.st}
	m, a := e.machine(t, "bmc-00001")
	e.fleet.SetFaults("bmc-00001", sim.Faults{Silent: true})
	rep := e.x.Run(ctx, m, a)
	d := rep.Diagnosis
	text := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
	if d.Cause != CauseBladeBMC || d.Confidence != Low || rep.Facts.Blade == nil || rep.Facts.Blade.EMAddress != "" ||
		!strings.Contains(text, "2 of the 2 other blades of enclosure enc-h answer a ping") ||
		!strings.Contains(text, "not in the inventory") || !strings.Contains(text, "add enclosure enc-h's enclosure manager to the inventory") {
		t.Fatalf("one silent blade: %s (%s), steps %v\n%s", d.Cause, d.Confidence, rep.Steps, text)
	}
	// Every blade silent: the enclosure, with medium confidence (its
	// manager could not be asked).
	e.fleet.SetFaults("bmc-00002", sim.Faults{Silent: true})
	e.fleet.SetFaults("bmc-00003", sim.Faults{Silent: true})
	rep = e.x.Run(ctx, m, a)
	d = rep.Diagnosis
	text = strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
	if d.Cause != CauseEnclosureDown || d.Confidence != Medium || len(rep.Steps) != 1 || rep.Steps[0] != NeedSiblings ||
		!strings.Contains(text, "0 of the 2 other blades of enclosure enc-h answer a ping") || !strings.Contains(text, "lightsout enclosures add") {
		t.Fatalf("every blade silent: %s (%s), steps %v\n%s", d.Cause, d.Confidence, rep.Steps, text)
	}
}

// TestExecutorPrivilegeGranted: an account asking for administrator
// privilege for a user the BMC limits to operator is refused; the
// diagnosis logs in at operator (closed at once) and says which privilege
// the BMC grants, with the account edit that fixes it.
func TestExecutorPrivilegeGranted(t *testing.T) {
	e := newEnvWith(t, sim.Config{Count: 2, Seed: 9, Password: "gather-pass", Accounts: sim.Accounts{Operator: true}})
	ctx := context.Background()
	m, a := e.machine(t, "bmc-00001")
	a.User, a.Privilege = sim.OperatorUser, "administrator"
	if err := e.st.UpdateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	b, _ := e.fleet.BMC("bmc-00001")
	rep := e.x.Run(ctx, m, a)
	d := rep.Diagnosis
	text := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
	if d.Cause != CausePrivilegeTooLow || d.Confidence != High || rep.Facts.Privilege == nil || rep.Facts.Privilege.Granted != "operator" ||
		!strings.Contains(d.Summary, "grants user operator operator privilege, not the administrator") ||
		!strings.Contains(d.Remedy, fmt.Sprintf("lightsout accounts set %d --privilege operator", a.ID)) ||
		!strings.Contains(text, "asked for administrator: refused") || !strings.Contains(text, "asked for operator: granted") {
		t.Fatalf("%s (%s) %+v\n%s", d.Cause, d.Confidence, rep.Facts.Privilege, text)
	}
	if c := b.Counters(); c.SessionsOpen != 0 {
		t.Errorf("%d sessions left open", c.SessionsOpen)
	}
}

// TestExecutorLossIsLoss: the path's loss, measured with session-less
// requests, over real UDP: none on a clean BMC, about the fault's rate on
// a lossy one; and a check of the lossy BMC that stalls is diagnosed
// packet_loss with the rate (medium), never a hung BMC with high
// confidence.
func TestExecutorLossIsLoss(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m1, a1 := e.machine(t, "bmc-00001")
	if l := e.x.loss(ctx, m1, a1); l.Err != "" || l.Lost != 0 || l.Answered != lossRequests || l.Attempts != lossRequests {
		t.Fatalf("clean path: %+v", l)
	}
	if err := e.fleet.SetFaults("bmc-00002", sim.Faults{Lossy: 0.5}); err != nil {
		t.Fatal(err)
	}
	m2, a2 := e.machine(t, "bmc-00002")
	if l := e.x.loss(ctx, m2, a2); l.Err != "" || l.Rate() < 0.2 || l.Rate() > 0.8 {
		t.Fatalf("half the datagrams lost: %+v (rate %.2f)", l, l.Rate())
	}
	// Garbage is not loss.
	if err := e.fleet.SetFaults("bmc-00003", sim.Faults{Malformed: 1}); err != nil {
		t.Fatal(err)
	}
	m3, a3 := e.machine(t, "bmc-00003")
	if l := e.x.loss(ctx, m3, a3); !strings.Contains(l.Err, "malformed replies") {
		t.Fatalf("garbage: %+v", l)
	}
	// The fresh check of a lossy BMC ends in several ways (Degraded,
	// stalled, silent when even the first contact is lost): diagnose
	// until one stalls (bounded).
	for i := 0; ; i++ {
		rep := e.x.Run(ctx, m2, a2)
		if rep.Facts.Reason != state.ReasonStalled {
			if i == 15 {
				t.Fatalf("no check stalled in %d tries (last %s/%s)", i+1, rep.Facts.State, rep.Facts.Reason)
			}
			continue
		}
		d := rep.Diagnosis
		if d.Cause != CausePacketLoss || d.Confidence != Medium || !strings.Contains(d.Summary, "% of packets") || !strings.Contains(d.Remedy, "duplex") {
			t.Fatalf("stalled on a lossy path: %s (%s): %s\n%s", d.Cause, d.Confidence, d.Summary, strings.Join(d.Evidence, "\n"))
		}
		t.Logf("try %d: %s", i+1, d.Summary)
		break
	}
}

// TestExecutorSessionCensus: the session table read through Get Session
// Info tells the diagnosis's own session (this manager's socket: address
// and port) from another tool on the same host under the same user, and
// names users. (The engine holds one session per BMC: a second session of
// ours exists only as a handshake left half-open, which the trees' tables
// cover.)
func TestExecutorSessionCensus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, a := e.machine(t, "bmc-00001")
	b, _ := e.fleet.BMC("bmc-00001")
	other, err := ipmi.New(ipmi.Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	theirs, err := other.Open(ctx, b.Addr(), ipmi.Credentials{User: a.User, Password: a.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close(ctx)
	sf := e.x.sessions(ctx, m, a)
	if !sf.Got || len(sf.Others) != 1 || !sf.Self.Ours || sf.Self.User != a.User {
		t.Fatalf("census %+v", sf)
	}
	o := sf.Others[0]
	if o.User != a.User || !o.SameHost || !o.SameUser || o.Ours || o.Foreign() {
		t.Errorf("another tool of this host as the same user: %+v", o)
	}
}

// TestExecutorSessionHang: a BMC that hangs in session (the simulator's
// session_hang: pings, Get Channel Authentication Capabilities and the
// RMCP+ handshake answered, every in-session request dropped) stalls the
// fresh check after the login; the diagnosis samples session-less
// requests, finds the path clean, and names a hung controller with high
// confidence, packet loss ruled out — not packet_loss.
func TestExecutorSessionHang(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.fleet.SetFaults("bmc-00004", sim.Faults{SessionHang: true}); err != nil {
		t.Fatal(err)
	}
	m, a := e.machine(t, "bmc-00004")
	rep := e.x.Run(ctx, m, a)
	d := rep.Diagnosis
	text := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
	if rep.Facts.State != state.NotResponding || rep.Facts.Reason != state.ReasonStalled || !slices.Contains(rep.Steps, NeedLoss) {
		t.Fatalf("facts %s/%s (stage %q) steps %v: %s", rep.Facts.State, rep.Facts.Reason, rep.Facts.Evidence.FailedStage, rep.Steps, rep.Facts.Message)
	}
	if l := rep.Facts.Loss; l == nil || l.Err != "" || l.Lost != 0 || l.Answered == 0 {
		t.Fatalf("loss sample %+v", rep.Facts.Loss)
	}
	if d.Cause != CauseBMCHung || d.Confidence != High || !strings.Contains(text, "the path is clean, the controller stalls in session") ||
		!strings.Contains(text, "packet loss on the path: every session-less request was answered") || !strings.Contains(d.Remedy, "mc reset cold") {
		t.Fatalf("%s (%s)\n%s", d.Cause, d.Confidence, text)
	}
}

func TestParseAddressChange(t *testing.T) {
	for _, tt := range []struct {
		detail, old, new string
		ok               bool
	}{
		{AddressChange("10.0.0.1:623", "10.0.0.2:623"), "10.0.0.1:623", "10.0.0.2:623", true},
		{`user "a" → "b", ` + AddressChange("[::1]:623", "[::2]:623") + ", password changed", "[::1]:623", "[::2]:623", true},
		{"password changed", "", "", false},
		{"address  → x", "", "", false},
	} {
		old, nw, ok := ParseAddressChange(tt.detail)
		if old != tt.old || nw != tt.new || ok != tt.ok {
			t.Errorf("%q: %q %q %v", tt.detail, old, nw, ok)
		}
	}
}
