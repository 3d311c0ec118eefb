package checkrun

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/sim/simtest"
	"github.com/lightsout/lightsout/internal/state"
)

// TestRunnerRedfishMemo: a run keeps what its Redfish checks learned in
// the cache directory (sealed), and the next run's checks use it — one
// request over a resumed TLS session; a damaged memo is a warning and is
// replaced; a run without Redfish targets creates nothing there.
func TestRunnerRedfishMemo(t *testing.T) {
	const pw = "checkrun-test-pw1"
	f := simtest.Start(t, sim.Config{Count: 3, Seed: 5, Password: pw, Redfish: true}, 83)
	var targets []probe.Target
	for _, b := range f.BMCs() {
		targets = append(targets, probe.Target{Name: b.Name(), Protocol: "redfish", Addr: b.RedfishAddr(), User: sim.AdminUser,
			Password: []byte(pw), Expected: b.RegisteredGUID(), Timeout: 5 * time.Second})
	}
	dir := t.TempDir()
	run := func(t *testing.T, cacheDir string, targets []probe.Target) ([]probe.Observation, string) {
		t.Helper()
		r, err := New(Config{Parallel: 4, CacheDir: cacheDir})
		if err != nil {
			t.Fatal(err)
		}
		var obs []probe.Observation
		r.Run(context.Background(), targets, func(o probe.Observation) { obs = append(obs, o) })
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		return obs, r.Warning
	}
	obs, warn := run(t, dir, targets)
	for _, o := range obs {
		if o.State != state.Connectable || len(o.Evidence.Redfish.Statuses) != 3 || o.Evidence.Redfish.TLSResumed {
			t.Fatalf("first run: %s %s %+v", o.Name, o.State, o.Evidence.Redfish)
		}
	}
	if warn != "" {
		t.Fatalf("warning %q", warn)
	}
	for _, name := range []string{MemoFile, KeyFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	obs, _ = run(t, dir, targets)
	for _, o := range obs {
		ev := o.Evidence.Redfish
		if o.State != state.Connectable || len(ev.Statuses) != 1 || ev.LearnedSystem == "" || !ev.TLSResumed {
			t.Fatalf("second run: %s %s %+v", o.Name, o.State, ev)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, MemoFile), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	obs, warn = run(t, dir, targets)
	if warn == "" || len(obs) != len(targets) || obs[0].State != state.Connectable || len(obs[0].Evidence.Redfish.Statuses) != 3 {
		t.Fatalf("damaged memo: warning %q, %+v", warn, obs)
	}
	obs, _ = run(t, dir, targets[:1])
	if len(obs[0].Evidence.Redfish.Statuses) != 1 {
		t.Fatalf("the damaged memo was not replaced: %+v", obs[0].Evidence.Redfish)
	}

	ipmiOnly := filepath.Join(t.TempDir(), "c")
	ipmiT := targets[0]
	ipmiT.Protocol, ipmiT.Addr, ipmiT.Timeout = "ipmi", f.BMCs()[0].Addr(), time.Second
	run(t, ipmiOnly, []probe.Target{ipmiT})
	if _, err := os.Stat(ipmiOnly); !os.IsNotExist(err) {
		t.Fatalf("an IPMI-only run created %s: %v", ipmiOnly, err)
	}
}
