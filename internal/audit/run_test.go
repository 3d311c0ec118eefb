package audit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/sim"
)

// startFleet runs a simulated fleet on 127.0.0.1 (consecutive ports) for
// the test.
func startFleet(t *testing.T, cfg sim.Config) *sim.Fleet {
	t.Helper()
	if cfg.Password == "" {
		cfg.Password = "audit-pass-123"
	}
	cfg.BaseAddr = "127.0.0.1"
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		cfg.BasePort = 30000 + rand.IntN(30000)
		var f *sim.Fleet
		if f, err = sim.New(cfg); err == nil {
			t.Cleanup(func() { f.Close() })
			return f
		}
	}
	t.Fatalf("simulator: %v", err)
	return nil
}

func newEngine(t *testing.T) *ipmi.Engine {
	t.Helper()
	eng, err := ipmi.New(ipmi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func target(f *sim.Fleet, b *sim.BMC) probe.Target {
	return probe.Target{Name: b.Name(), Protocol: "ipmi", Addr: b.Addr(), User: sim.AdminUser,
		Password: []byte(f.Password()), Timeout: time.Second}
}

// auditAll audits every BMC of the fleet at once (one goroutine each).
func auditAll(t *testing.T, eng *ipmi.Engine, f *sim.Fleet, o Options) map[string]Report {
	t.Helper()
	var mu sync.Mutex
	out := map[string]Report{}
	var wg sync.WaitGroup
	for _, b := range f.BMCs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := RunWith(ctx, eng, target(f, b), o)
			mu.Lock()
			out[b.Name()] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func codes(fs []Finding) []Code {
	var out []Code
	for _, f := range fs {
		if !slices.Contains(out, f.Code) {
			out = append(out, f.Code)
		}
	}
	return out
}

// TestRunFindsEachFault: each security fault of the simulator yields
// exactly its finding; a sound BMC yields none; nothing is left open and
// no BMC sees two sessions of ours at once.
func TestRunFindsEachFault(t *testing.T) {
	t.Parallel()
	f := startFleet(t, sim.Config{Count: 6, Seed: 5, Faults: map[string]sim.Faults{
		"bmc-00002": {Cipher0: true},
		"bmc-00003": {Anonymous: true},
		"bmc-00004": {WeakAuth: true},
		"bmc-00005": {DefaultPassword: true},
		"bmc-00006": {Insecure: true},
	}})
	want := map[string][]Code{
		"bmc-00001": nil,
		"bmc-00002": {Cipher0Enabled},
		"bmc-00003": {AnonymousLogin},
		"bmc-00004": {WeakAuth},
		"bmc-00005": {DefaultPassword},
		"bmc-00006": {Cipher0Enabled, AnonymousLogin, WeakAuth},
	}
	eng := newEngine(t)
	reports := auditAll(t, eng, f, Options{})
	for name, r := range reports {
		if !r.Complete {
			t.Errorf("%s: incomplete: %s (checks %+v)", name, r.Error, r.Checks)
			continue
		}
		if got := codes(r.Findings); !slices.Equal(got, want[name]) {
			t.Errorf("%s: findings %v, want %v (%+v)", name, Keys(r.Findings), want[name], r.Findings)
		}
		for _, fd := range r.Findings {
			if fd.Message == "" || fd.Remedy == "" || fd.Severity == "" {
				t.Errorf("%s: finding without wording: %+v", name, fd)
			}
		}
		// The sim's admin user is "admin": the generic admin/admin is
		// decided locally, never tried against the monitored account.
		for _, c := range r.Checks {
			if c.Name == "default:admin" && c.Result != Skipped {
				t.Errorf("%s: default:admin was %s, want skipped", name, c.Result)
			}
		}
		// Own login, cipher 0, null user, the guesses; each refusal
		// followed by the monitored account's login.
		if maxLogins := 1 + 2*(2+DefaultMaxGuesses); r.Logins > maxLogins {
			t.Errorf("%s: %d logins, want at most %d", name, r.Logins, maxLogins)
		}
	}
	if keys := Keys(reports["bmc-00003"].Findings); !slices.Equal(keys, []string{"anonymous_login:anonymous_flag", "anonymous_login:null_login", "anonymous_login:null_users_flag"}) {
		t.Errorf("anonymous findings %v", keys)
	}
	if keys := Keys(reports["bmc-00004"].Findings); !slices.Equal(keys, []string{"weak_auth:none", "weak_auth:straight_password"}) {
		t.Errorf("weak_auth findings %v", keys)
	}
	for _, b := range f.BMCs() {
		c := b.Counters()
		if c.SessionsOpen != 0 || c.MaxSessionsPerClient > 1 {
			t.Errorf("%s: %d sessions left open, at most %d at once", b.Name(), c.SessionsOpen, c.MaxSessionsPerClient)
		}
	}
}

// TestRunVendorDefaults: the default tried is the BMC's vendor's, found
// through Get Device ID, within the per-audit bound.
func TestRunVendorDefaults(t *testing.T) {
	t.Parallel()
	vendors := []sim.Vendor{
		{Name: "dell", ManufacturerID: 674, Firmware: "4.40"},
		{Name: "supermicro", ManufacturerID: 10876, Firmware: "1.73"},
		{Name: "lenovo", ManufacturerID: 19046, Firmware: "3.10"},
		{Name: "hpe", ManufacturerID: 11, Firmware: "2.72"},
		{Name: "fujitsu", ManufacturerID: 10368, Firmware: "1.20"},
		{Name: "openbmc", ManufacturerID: 49622, Firmware: "2.12"},
	}
	faults := map[string]sim.Faults{}
	for i := 1; i <= 12; i++ {
		faults[fmt.Sprintf("bmc-%05d", i)] = sim.Faults{DefaultPassword: true}
	}
	f := startFleet(t, sim.Config{Count: 12, Seed: 9, Vendors: vendors, Faults: faults})
	reports := auditAll(t, newEngine(t), f, Options{})
	for _, b := range f.BMCs() {
		r := reports[b.Name()]
		user, _ := sim.DefaultCredential(b.Vendor().ManufacturerID)
		if !r.Complete || len(r.Findings) != 1 || r.Findings[0].Code != DefaultPassword || r.Findings[0].Subject != user {
			t.Errorf("%s (%s): %v %s, want default_password:%s", b.Name(), b.Vendor().Name, Keys(r.Findings), r.Error, user)
		}
		if r.ManufacturerID != b.Vendor().ManufacturerID {
			t.Errorf("%s: manufacturer %d, want %d", b.Name(), r.ManufacturerID, b.Vendor().ManufacturerID)
		}
	}
	// No guesses at all when told so.
	b := f.BMCs()[0]
	r := RunWith(context.Background(), newEngine(t), target(f, b), Options{MaxGuesses: -1})
	if !r.Complete || len(r.Findings) != 0 || r.Logins != 4 { // own, cipher 0 (refused in Open Session), null user + own again
		t.Errorf("MaxGuesses -1: %v, %d logins", Keys(r.Findings), r.Logins)
	}
}

// TestRunOwnDefault: an account that itself uses a documented default is a
// finding without any extra login; a BMC that does not answer gives an
// incomplete report.
func TestRunOwnDefault(t *testing.T) {
	t.Parallel()
	f := startFleet(t, sim.Config{Count: 2, Password: "admin", Faults: map[string]sim.Faults{"bmc-00002": {Silent: true}}})
	eng := newEngine(t)
	r := Run(context.Background(), eng, target(f, f.BMCs()[0]))
	if !r.Complete || len(r.Findings) != 1 || r.Findings[0].Key() != "default_password:admin" {
		t.Fatalf("own default: %v %s", Keys(r.Findings), r.Error)
	}
	r = Run(context.Background(), eng, target(f, f.BMCs()[1]))
	if r.Complete || r.Error == "" || len(r.Checks) != 1 || r.Checks[0].Result != Failed || r.Logins != 0 {
		t.Fatalf("silent BMC: %+v", r)
	}
}
