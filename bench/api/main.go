// Command api benchmarks the API's machine listing: `GET
// /api/v1/machines` pages with many concurrent clients on a large fleet
// (default 50,000 machines, 50 clients), against `lightsout server` on
// SQLite and on PostgreSQL, and reports p50/p99 latency per scenario
// (target: p99 ≤ 100 ms) with the server's and the database's CPU per
// answer (what a page costs, however loaded the machine is).
//
//	go run ./bench/api                               # 50,000 machines, SQLite and PostgreSQL
//	go run ./bench/api --count 5000 --duration 10s   # smoke run
//
// The machines point at loopback addresses nothing answers on and the
// server checks them once a day (--interval 24h): the listing is measured,
// not the monitor. Every channel has a stored state (1% NotResponding, the
// rest Connectable) as on an established fleet. PostgreSQL is a throwaway
// cluster (internal/store/pgtest). See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/bench/internal/gobuild"
	"github.com/lightsout/lightsout/bench/internal/markdown"
	"github.com/lightsout/lightsout/bench/internal/proc"
	"github.com/lightsout/lightsout/bench/internal/progress"
	"github.com/lightsout/lightsout/bench/internal/scratch"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

const targetP99 = 100 * time.Millisecond

type config struct {
	count    int
	clients  int
	duration time.Duration
	backends []string
	out      string
	profile  string
	strict   bool
	keep     bool
}

var running = proc.NewTable()

func main() {
	var c config
	var backends string
	flag.IntVar(&c.count, "count", 50000, "machines in the fleet")
	flag.IntVar(&c.clients, "clients", 50, "concurrent clients")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "how long each scenario runs")
	flag.StringVar(&backends, "db", "sqlite,postgres", "databases to measure, comma-separated: sqlite, postgres")
	flag.StringVar(&c.out, "out", "", "also write the report as Markdown to this file")
	flag.StringVar(&c.profile, "profile", "", "write each server's CPU profile to this file, with the database's name before the extension (LIGHTSOUT_CPUPROFILE)")
	flag.BoolVar(&c.strict, "strict", false, "exit 1 when a p99 misses the target")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch directory")
	flag.Parse()
	c.backends = strings.Split(backends, ",")
	switch {
	case flag.NArg() > 0:
		fatalf("unexpected arguments: %q", flag.Args())
	case c.count < 1 || c.count > 1_000_000:
		fatalf("--count %d: must be 1 to 1,000,000", c.count)
	case c.clients < 1:
		fatalf("--clients %d: must be at least 1", c.clients)
	case c.duration < time.Second:
		fatalf("--duration %v: must be at least 1s", c.duration)
	}
	for _, b := range c.backends {
		if b != "sqlite" && b != "postgres" {
			fatalf("--db %q: must be sqlite or postgres", b)
		}
	}
	b := &bench{cfg: c}
	proc.RunAndExit(b.run, b.cleanup)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/api: "+format+"\n", args...)
	os.Exit(2)
}

type bench struct {
	cfg     config
	tmp     string
	bin     string
	report  markdown.Report
	cleanMu sync.Once
	mu      sync.Mutex
	srv     *proc.Child
	drops   []func() error
	rows    [][]string
	failed  bool
}

func (b *bench) cleanup() {
	b.cleanMu.Do(func() {
		b.mu.Lock()
		srv := b.srv
		b.mu.Unlock()
		if srv != nil {
			srv.Stop(30*time.Second, func() {})
		}
		running.Shutdown()
		for _, d := range b.drops {
			d()
		}
		pgtest.Stop()
		scratch.Remove(b.tmp, b.cfg.keep)
	})
}

func (b *bench) run() int {
	var err error
	if b.tmp, err = scratch.New("lightsout-bench-api-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench/api:", err)
		return 1
	}
	_, bins, err := gobuild.Build(b.tmp, "./cmd/lightsout")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/api:", err)
		return 1
	}
	b.bin = bins[0]
	c := b.cfg
	b.report.Printf("# bench/api — GET /api/v1/machines, %d machines, %d concurrent clients\n\n", c.count, c.clients)
	b.report.Printf("`%s`\n\n", strings.Join(os.Args, " "))
	b.report.Printf("- machine: %s, %d CPUs; load at start: %s\n", proc.CPUModel(), runtime.NumCPU(), loadavg())
	b.report.Printf("- server: `lightsout server --interval 24h` (the monitor idle: the listing is measured); every channel has a stored state, 1%% NotResponding\n")
	b.report.Printf("- each scenario: %d clients, each sending its next request when the last answered, for %v\n\n", c.clients, c.duration)
	for _, db := range c.backends {
		if err := b.backend(context.Background(), db); err != nil {
			fmt.Fprintln(os.Stderr, "bench/api:", err)
			return 1
		}
	}
	b.report.Printf("| database | scenario | requests | req/s | p50 ms | p99 ms | max ms | server CPU ms/answer | PostgreSQL CPU ms/answer | bytes/answer | p99 ≤ %v |\n|---|---|---|---|---|---|---|---|---|---|---|\n", targetP99)
	for _, r := range b.rows {
		b.report.Printf("| %s |\n", strings.Join(r, " | "))
	}
	b.report.Printf("\nLoad at the end: %s\n", loadavg())
	if err := b.report.WriteFile(c.out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/api: --out:", err)
		return 1
	}
	if b.failed && c.strict {
		return 1
	}
	return 0
}

// backend fills a database of db's kind, starts a server on it and runs
// the scenarios.
func (b *bench) backend(ctx context.Context, db string) error {
	c := b.cfg
	dir := filepath.Join(b.tmp, "data-"+db)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dsn := filepath.Join(dir, "lightsout.db")
	postmaster := 0
	if db == "postgres" {
		d, pm, drop, err := pgtest.Database(ctx, "lightsout_bench_api")
		if err != nil {
			return fmt.Errorf("PostgreSQL: %v", err)
		}
		b.drops = append(b.drops, drop)
		dsn, postmaster = d, pm
	}
	progress.Logf("== %s: filling %d machines ==", db, c.count)
	t := time.Now()
	if err := fill(ctx, dsn, filepath.Join(dir, "secret.key"), c.count); err != nil {
		return err
	}
	progress.Logf("filled in %v", time.Since(t).Round(time.Millisecond))

	argv := []string{b.bin, "server", "--data", dir, "--listen", "127.0.0.1:0", "--interval", "24h"}
	if db == "postgres" {
		argv = append(argv, "--db", dsn)
	}
	var env []string
	if c.profile != "" {
		p, err := filepath.Abs(c.profile)
		if err != nil {
			return err
		}
		ext := filepath.Ext(p)
		env = append(env, "LIGHTSOUT_CPUPROFILE="+strings.TrimSuffix(p, ext)+"-"+db+ext)
	}
	srv, err := running.Start(proc.Spec{Argv: argv, Env: proc.Env([]string{"LIGHTSOUT_PASSWORD", "LIGHTSOUT_CPUPROFILE"}, env...),
		Name: "lightsout server", Desc: "the server", Stdout: dir + ".stdout", Stderr: dir + ".stderr", Ready: "metrics on http://"})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	defer func() {
		srv.Stop(30*time.Second, func() {})
		b.mu.Lock()
		b.srv = nil
		b.mu.Unlock()
	}()
	line, err := srv.WaitReady(3*time.Minute, "the server", func() { srv.Stop(15*time.Second, func() {}) })
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`metrics on (http://\S+)/metrics`).FindStringSubmatch(line)
	if m == nil {
		return fmt.Errorf("the server's ready line names no address: %q", line)
	}
	base := m[1]
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		return fmt.Errorf("the first admin token: %v", err)
	}
	cl := &client{base: base, token: strings.TrimSpace(string(tok)),
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c.clients}}}
	// The cursors: machine IDs, from walking the whole listing once.
	t = time.Now()
	ids, err := cl.walk(ctx)
	if err != nil {
		return err
	}
	if len(ids) != c.count {
		return fmt.Errorf("walking the listing: %d machines, %d expected", len(ids), c.count)
	}
	progress.Logf("walked %d machines in %v", len(ids), time.Since(t).Round(time.Millisecond))

	scenarios := []struct {
		name string
		path func(r *rand.Rand) string
	}{
		{"first page (default 100)", func(*rand.Rand) string { return "/api/v1/machines" }},
		{"page at a random cursor (100)", func(r *rand.Rand) string {
			return fmt.Sprintf("/api/v1/machines?after=%d", ids[r.IntN(len(ids))])
		}},
		{"page of 1,000 at a random cursor", func(r *rand.Rand) string {
			return fmt.Sprintf("/api/v1/machines?limit=1000&after=%d", ids[r.IntN(len(ids))])
		}},
		{"filtered: state=NotResponding (1%), random cursor", func(r *rand.Rand) string {
			return fmt.Sprintf("/api/v1/machines?state=NotResponding&after=%d", ids[r.IntN(len(ids))])
		}},
		{"filtered: name prefix, 100 of them", func(r *rand.Rand) string {
			return fmt.Sprintf("/api/v1/machines?prefix=bmc-%03d", r.IntN(max(1, c.count/100)))
		}},
	}
	for _, s := range scenarios {
		cpu0, _ := proc.CPUSeconds(srv.PID)
		db0 := clusterCPU(postmaster)
		res, err := cl.load(ctx, c.clients, c.duration, s.path)
		if err != nil {
			return fmt.Errorf("%s: %v", s.name, err)
		}
		// The server's CPU per answer: what a page costs, whatever else
		// loads the machine (latency is not).
		cpu1, _ := proc.CPUSeconds(srv.PID)
		cpuPer := (cpu1 - cpu0) * 1000 / float64(max(1, len(res.lat)))
		dbPer := (clusterCPU(postmaster) - db0) * 1000 / float64(max(1, len(res.lat)))
		dbCol := "–"
		if postmaster != 0 {
			dbCol = fmt.Sprintf("%.2f", dbPer)
		}
		p50, p99, mx := res.quantile(0.5), res.quantile(0.99), res.quantile(1)
		ok := p99 <= targetP99
		if !ok {
			b.failed = true
		}
		verdict := "PASS"
		if !ok {
			verdict = "FAIL"
		}
		progress.Logf("%s / %s: %d requests, p50 %v, p99 %v, server CPU %.2f ms each, PostgreSQL %.2f", db, s.name, len(res.lat), p50, p99, cpuPer, dbPer)
		b.rows = append(b.rows, []string{db, s.name, fmt.Sprint(len(res.lat)), fmt.Sprintf("%.0f", float64(len(res.lat))/res.wall.Seconds()),
			ms(p50), ms(p99), ms(mx), fmt.Sprintf("%.2f", cpuPer), dbCol, fmt.Sprint(res.bytes / int64(max(1, len(res.lat)))), verdict})
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e6) }

// fill imports n machines the way POST /api/v1/import does and stores a
// state for each channel.
func fill(ctx context.Context, dsn, keyFile string, n int) error {
	box, err := secret.LoadOrCreateKey(keyFile)
	if err != nil {
		return err
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: dsn, Box: box})
	if err != nil {
		return err
	}
	defer st.Close()
	inv := &inventory.Inventory{}
	pw := map[string][]byte{}
	width := max(5, len(fmt.Sprint(n)))
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("bmc-%0*d", width, i)
		// 127.250.0.0/15: nothing listens there.
		inv.Machines = append(inv.Machines, inventory.Machine{Name: name, Address: fmt.Sprintf("127.%d.%d.%d", 250+i>>16, i>>8&255, i&255),
			User: "admin", Group: fmt.Sprintf("rack-%03d", i/40)})
		pw[name] = []byte("bench-password")
	}
	mgr := manager.New(st, monitor.New(st, monitor.Config{}), nil, nil)
	got, err := mgr.Import(ctx, manager.Actor{Name: "bench", Role: store.RoleAdmin}, inv, pw, nil, false)
	if err != nil {
		return fmt.Errorf("import: %v", err)
	}
	if got != n {
		return fmt.Errorf("import: %d machines, %d expected", got, n)
	}
	accts, err := st.Accounts(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return err
	}
	now := time.Now()
	for i, a := range accts {
		cs := store.ChannelState{AccountID: a.ID, State: state.Connectable, Since: now, CheckedAt: now, Power: "on",
			GUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), Message: "seeded by bench/api"}
		if i%100 == 7 {
			cs.State, cs.Reason, cs.Message = state.NotResponding, state.Reason("silent"), "seeded by bench/api: silent"
		}
		if err := st.SaveState(ctx, cs, nil); err != nil {
			return fmt.Errorf("%s: %v", a.Machine, err)
		}
	}
	return nil
}

type client struct {
	base, token string
	http        *http.Client
}

func (c *client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.300s", path, resp.Status, body)
	}
	return body, nil
}

// walk follows the cursor through the whole listing (pages of 1,000) and
// returns every machine's ID.
func (c *client) walk(ctx context.Context) ([]int64, error) {
	var ids []int64
	after := int64(0)
	for range 10_000 {
		body, err := c.get(ctx, fmt.Sprintf("/api/v1/machines?limit=1000&after=%d", after))
		if err != nil {
			return nil, err
		}
		var page struct {
			Machines []struct {
				ID int64 `json:"id"`
			} `json:"machines"`
			NextAfter int64 `json:"next_after"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		for _, m := range page.Machines {
			ids = append(ids, m.ID)
		}
		if page.NextAfter == 0 {
			return ids, nil
		}
		after = page.NextAfter
	}
	return nil, fmt.Errorf("the listing did not end after 10,000 pages")
}

type result struct {
	lat   []time.Duration
	bytes int64
	wall  time.Duration
}

func (r *result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// load runs n clients for d, each sending its next request when the last
// one answered, and collects every latency.
func (c *client) load(ctx context.Context, n int, d time.Duration, path func(*rand.Rand) string) (*result, error) {
	res := &result{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 17))
			var lat []time.Duration
			var bytes int64
			for time.Now().Before(end) {
				t := time.Now()
				body, err := c.get(ctx, path(r))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(t))
				bytes += int64(len(body))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.bytes += bytes
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	slices.Sort(res.lat)
	return res, firstErr
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// clusterCPU is the CPU time in seconds of a PostgreSQL cluster: its
// postmaster, its live processes (backends, workers) and those it reaped
// (0 without a postmaster).
func clusterCPU(postmaster int) float64 {
	if postmaster == 0 {
		return 0
	}
	total := 0.0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := 0
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid <= 0 {
			continue
		}
		f := statFields(pid)
		// f[1] is field 4 (ppid); utime, stime fields 14, 15; cutime,
		// cstime 16, 17 (children reaped), in clock ticks of 1/100 s.
		if len(f) < 15 || pid != postmaster && f[1] != fmt.Sprint(postmaster) {
			continue
		}
		n := 2
		if pid == postmaster {
			n = 4
		}
		for _, v := range f[11 : 11+n] {
			var x float64
			fmt.Sscan(v, &x)
			total += x / 100
		}
	}
	return total
}

// statFields are the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}
