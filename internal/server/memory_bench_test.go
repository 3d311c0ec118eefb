package server

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/sim/simtest"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// serverLive is the whole server's live Go heap per channel, measured in
// process against a simulated fleet (the simulator's own heap left out by
// the allocation's stack), after every channel was checked: the live part
// of bench/monitor's "Go runtime growth per channel".
type serverLive struct {
	n          int
	perChannel float64 // live bytes of the server's allocations ÷ n
	goroutines int     // the server's goroutines beyond the fleet's
	top        []holder
}

type holder struct {
	fn    string
	bytes int64
}

// measureServerLive starts a simulated fleet of n BMCs and a server over
// them (SQLite), checks every channel rounds times, and measures. With
// LIGHTSOUT_HEAPPROFILE=FILE the heap profile is written there too
// (go tool pprof -sample_index=inuse_space -ignore 'internal/sim|go-ipmi/pkg/(server|bmc)' FILE).
func measureServerLive(t testing.TB, n, rounds int) serverLive {
	base, _ := liveByOwner(t, 0, 0)
	byFn, g := liveByOwner(t, n, rounds)
	out := serverLive{n: n, goroutines: g}
	var total int64
	for fn, b := range byFn {
		b -= base[fn]
		total += b
		out.top = append(out.top, holder{fn, b})
	}
	out.perChannel = float64(total) / float64(n)
	sort.Slice(out.top, func(i, j int) bool { return out.top[i].bytes > out.top[j].bytes })
	return out
}

// liveByOwner runs a server over n simulated BMCs (none: n 0), checks
// each rounds times, and returns its live heap by owner (attribute) and
// the goroutines it added.
func liveByOwner(t testing.TB, n, rounds int) (map[string]int64, int) {
	ctx := context.Background()
	var bmcs []*sim.BMC
	password := "memory-pass-1"
	if n > 0 {
		f := simtest.Start(t, sim.Config{Count: n, Seed: 19, Password: password}, 91)
		bmcs = f.BMCs()
	}
	dir := t.TempDir()
	box, err := secret.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(dir, "lightsout.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bmcs {
		mc := store.Machine{Name: b.Name(), GUID: b.RegisteredGUID().String()}
		if err := st.AddMachine(ctx, &mc); err != nil {
			t.Fatal(err)
		}
		a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: b.Addr().Addr().String(), Port: int(b.Addr().Port()),
			User: sim.AdminUser, Password: []byte(password), Privilege: "administrator"}
		if err := st.AddAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	gBefore := runtime.NumGoroutine()
	sch := state.Schedule{Interval: time.Hour, Confirm: time.Hour, MaxBackoff: time.Hour, AuthRetry: time.Hour}
	s, err := New(ctx, Config{DataDir: dir, Schedule: sch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := s.Monitor.IDs()
	if len(ids) != n {
		t.Fatalf("%d channels loaded, want %d", len(ids), n)
	}
	for r := 0; r < rounds; r++ {
		for i := 0; i < n; i += 200 {
			res, err := s.Monitor.CheckNow(ctx, ids[i:min(n, i+200)])
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range res {
				if x.Skipped != "" {
					t.Fatalf("%s: check skipped: %s", x.Machine, x.Skipped)
				}
			}
		}
	}
	if c := s.Monitor.StateCounts()[state.Connectable]; c != n && rounds > 0 {
		t.Fatalf("%d of %d channels Connectable", c, n)
	}
	runtime.GC()
	runtime.GC()
	if path := os.Getenv("LIGHTSOUT_HEAPPROFILE"); path != "" && n > 0 {
		if fh, err := os.Create(path); err == nil {
			_ = pprof.Lookup("heap").WriteTo(fh, 0)
			fh.Close()
		}
	}
	recs := make([]runtime.MemProfileRecord, 1<<16)
	for {
		k, ok := runtime.MemProfile(recs, false)
		if ok {
			recs = recs[:k]
			break
		}
		recs = make([]runtime.MemProfileRecord, k+1024)
	}
	byFn := map[string]int64{}
	for _, r := range recs {
		b := r.InUseBytes()
		if b <= 0 {
			continue
		}
		owner, skip := attribute(r.Stack())
		if skip {
			continue
		}
		byFn[owner] += b
	}
	g := runtime.NumGoroutine() - gBefore
	runtime.KeepAlive(s)
	return byFn, g
}

// attribute names the first lightsout function on an allocation's stack
// (or the first function), and skips the simulator's, the test's set-up
// and the runtime's own.
func attribute(stk []uintptr) (owner string, skip bool) {
	frames := runtime.CallersFrames(stk)
	for {
		fr, more := frames.Next()
		fn := fr.Function
		switch {
		case strings.Contains(fn, "/internal/sim") || strings.Contains(fn, "go-ipmi/pkg/server") ||
			strings.Contains(fn, "go-ipmi/pkg/bmc") || strings.Contains(fn, "go-ipmi/pkg/handlers"):
			return "", true
		case fn == "runtime.malg":
			return "", true // a goroutine's descriptor: counted as goroutines
		}
		if owner == "" && strings.Contains(fn, "lightsout/internal/") {
			if strings.Contains(fn, "measureServerLive") {
				return "", true // the test's own set-up
			}
			owner = fn
		}
		if !more {
			break
		}
	}
	if owner == "" {
		owner = "(outside lightsout)"
	}
	return owner, false
}

// BenchmarkServerLiveBytes reports the whole server's live heap per
// channel (monitor, engine, events recorder, cluster node, audit,
// exporter, store caches…) over a healthy simulated fleet, checked three
// times each. go test ./internal/server -run '^$' -bench ServerLiveBytes
// -benchtime 1x [-v: the biggest holders]
func BenchmarkServerLiveBytes(b *testing.B) {
	runtime.MemProfileRate = 1
	for b.Loop() {
		m := measureServerLive(b, 1000, 3)
		b.ReportMetric(m.perChannel, "B/channel")
		b.ReportMetric(float64(m.goroutines), "goroutines")
		for _, h := range m.top[:min(25, len(m.top))] {
			b.Logf("%8.1f B/channel  %s", float64(h.bytes)/float64(m.n), h.fn)
		}
	}
}

// TestServerLiveBytesBudget holds the whole server's live heap per
// channel (BenchmarkServerLiveBytes, smaller) under 2 KiB: with the
// server's GOGC=50 that leaves room within bench/monitor's 4 KiB of Go
// runtime growth per channel for garbage, stacks and the runtime's own.
// 2,147 bytes before issue 19's cuts, about 1,700 after.
func TestServerLiveBytesBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated fleet of 400 BMCs, checked twice")
	}
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = rate }()
	m := measureServerLive(t, 400, 2)
	t.Logf("%.0f bytes per channel live, %d goroutines added", m.perChannel, m.goroutines)
	if m.perChannel > 2048 {
		for _, h := range m.top[:min(10, len(m.top))] {
			t.Logf("%8.1f B/channel  %s", float64(h.bytes)/float64(m.n), h.fn)
		}
		t.Errorf("the server keeps %.0f bytes per channel, over the 2,048 budget", m.perChannel)
	}
	if m.goroutines > 50 {
		t.Errorf("%d goroutines for %d channels: one per channel?", m.goroutines, m.n)
	}
}
