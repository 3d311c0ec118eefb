package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/store/pgtest"

	"modernc.org/sqlite"
)

// fillFleetSQL writes n machines (IDs 1..n, names m1..mN), one account and
// one stored state each, in one statement per table (fast set-up at
// scale): 1% NotResponding (reason silent), group g(i%50), zone dc2 for
// every tenth, tag t1 on every twentieth, every hundredth a blade of
// enclosure enc.
func fillFleetSQL(t testing.TB, db *DB, n int) {
	t.Helper()
	ctx := context.Background()
	if err := db.AddEnclosure(ctx, &Enclosure{Name: "enc", Address: "10.9.9.9", Slots: 0}); err != nil {
		t.Fatal(err)
	}
	var enc int64
	if err := db.read().row(ctx, "SELECT id FROM enclosures WHERE name = 'enc'").Scan(&enc); err != nil {
		t.Fatal(err)
	}
	seq := "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?) "
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{seq + `INSERT INTO machines (id, name, grp, zone, enclosure_id, slot, created_at, updated_at)
SELECT i, 'm' || i, 'g' || (i % 50), CASE WHEN i % 10 = 0 THEN 'dc2' ELSE '' END,
  CASE WHEN i % 100 = 0 THEN CAST(? AS BIGINT) END, CASE WHEN i % 100 = 0 THEN i / 100 ELSE 0 END, 1, 1 FROM s`, []any{n, enc}},
		{seq + `INSERT INTO accounts (id, machine_id, protocol, address, port, privilege, credentials_changed_at, created_at, updated_at)
SELECT i, i, 'ipmi', '10.7.0.' || i, 623, 'administrator', 1, 1, 1 FROM s`, []any{n}},
		{seq + `INSERT INTO channel_index (account_id, machine_id, state, reason)
SELECT i, i, CASE WHEN i % 100 = 7 THEN 'NotResponding' ELSE 'Connectable' END, CASE WHEN i % 100 = 7 THEN 'silent' ELSE '' END FROM s`, []any{n}},
		{seq + `INSERT INTO channel_states (account_id, state, reason, since, checked_at)
SELECT i, CASE WHEN i % 100 = 7 THEN 'NotResponding' ELSE 'Connectable' END, CASE WHEN i % 100 = 7 THEN 'silent' ELSE '' END, 1, 1 FROM s`, []any{n}},
		{seq + `INSERT INTO machine_tags (machine_id, tag) SELECT i, 't1' FROM s WHERE i % 20 = 0`, []any{n}},
	} {
		if _, err := db.w.ExecContext(ctx, db.d.rebind(st.sql), st.args...); err != nil {
			t.Fatalf("fill: %v\n%s", err, st.sql)
		}
	}
	if db.d.name == "postgres" {
		for _, tb := range []string{"machines", "accounts", "channel_index", "channel_states", "machine_tags"} {
			if _, err := db.w.ExecContext(ctx, "SELECT setval(pg_get_serial_sequence('"+tb+"', 'id'), 1000000)"); err != nil && tb != "channel_index" && tb != "channel_states" && tb != "machine_tags" {
				t.Fatal(err)
			}
		}
		// As autovacuum leaves a table after a bulk import: statistics and
		// the visibility map, without which the planner walks the primary
		// key for a group or zone rather than the index-only (grp, id).
		if _, err := db.w.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			t.Fatal(err)
		}
	}
}

// rowsRead runs PostgreSQL's EXPLAIN ANALYZE of the page's query and sums
// the rows every scan read (returned, or removed by a filter).
func rowsRead(t *testing.T, db *DB, f MachineFilter, p Page) (int, string) {
	t.Helper()
	query, args := db.pageQuery(f, p)
	query = db.d.rebind(query)
	var out string
	mustNil(t, db.r.QueryRowContext(context.Background(), "EXPLAIN (ANALYZE, FORMAT JSON) "+query, args...).Scan(&out))
	var plans []struct {
		Plan node `json:"Plan"`
	}
	mustNil(t, json.Unmarshal([]byte(out), &plans))
	var sum func(n node) int
	var lines []string
	sum = func(n node) int {
		total := 0
		if strings.Contains(n.Type, "Scan") {
			total = int((n.Rows + n.Filtered + n.Recheck) * n.Loops)
			lines = append(lines, fmt.Sprintf("%s %s %s: %d", n.Type, n.Relation, n.Index, total))
		}
		for _, c := range n.Plans {
			total += sum(c)
		}
		return total
	}
	return sum(plans[0].Plan), strings.Join(lines, "; ")
}

type node struct {
	Type     string  `json:"Node Type"`
	Relation string  `json:"Relation Name"`
	Index    string  `json:"Index Name"`
	Rows     float64 `json:"Actual Rows"`
	Loops    float64 `json:"Actual Loops"`
	Filtered float64 `json:"Rows Removed by Filter"`
	Recheck  float64 `json:"Rows Removed by Index Recheck"`
	Plans    []node  `json:"Plans"`
}

// costFilters are the filters whose page must read O(page) rows, with the
// most a page of 100 may read at any fleet size: rows on PostgreSQL (the
// page's machines, accounts and states and their index entries: 500), and
// b-tree pages on SQLite (about 115 for 100 neighbouring machines, 510 for
// 100 far apart, each on its own pages; a walk of a 40,000-machine fleet
// reads thousands).
var costFilters = []struct {
	f        MachineFilter
	max      int
	maxPages int
}{
	{MachineFilter{}, 600, 850},
	{MachineFilter{State: "NotResponding"}, 600, 850},
	{MachineFilter{State: "Connectable"}, 600, 850},
	{MachineFilter{Reason: "silent"}, 600, 850},
	{MachineFilter{State: "NotResponding", Reason: "silent"}, 600, 850},
	{MachineFilter{State: "Unknown"}, 50, 850},
	{MachineFilter{Group: "g7"}, 600, 850},
	{MachineFilter{Zone: "dc2"}, 600, 850},
	{MachineFilter{Zone: DefaultZone}, 600, 850},
	{MachineFilter{Tag: "t1"}, 600, 850},
	{MachineFilter{Enclosure: "enc"}, 600, 850},
	{MachineFilter{Prefix: "m1234"}, 100, 850}, // 11 names: m1234, m12340..m12349
}

// TestMachinePageCostIsOPage: a page of 100 under each filter, from the
// middle of the fleet, reads about as many rows as it returns whatever the
// fleet's size, at 40,000 machines as at 2,000. On PostgreSQL, the rows
// its scans read (EXPLAIN ANALYZE); on SQLite, the b-tree pages it reads
// (the connection's page cache hits and misses), and every table is
// searched through an index (EXPLAIN QUERY PLAN: no full scan, and no sort
// of the matches before the LIMIT but for the name prefix's).
func TestMachinePageCostIsOPage(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, n := range []int{2000, 40000} {
				costAt(t, openT(t, b.dsn(t), testBox), n)
			}
		})
	}
}

func costAt(t *testing.T, db *DB, n int) {
	fillFleetSQL(t, db, n)
	for _, c := range costFilters {
		p := Page{After: int64(n / 2), Limit: 100}
		if c.f.Prefix != "" || c.f.Enclosure != "" {
			p.After = 0
		}
		ms, _, _, err := db.MachinePage(context.Background(), c.f, p)
		mustNil(t, err)
		if len(ms) == 0 && c.f.State != "Unknown" {
			t.Fatalf("%d machines, %+v: an empty page", n, c.f)
		}
		if db.d.name == "postgres" {
			rows, plan := rowsRead(t, db, c.f, p)
			t.Logf("%d machines, %+v: %d machines, %d rows read (%s)", n, c.f, len(ms), rows, plan)
			if rows > c.max {
				t.Errorf("%d machines, %+v: %d rows read, more than %d: %s", n, c.f, rows, c.max, plan)
			}
			continue
		}
		plan := sqlitePlan(t, db, c.f, p)
		pages := pagesRead(t, db, c.f, p)
		t.Logf("%d machines, %+v: %d machines, %d pages read; plan %s", n, c.f, len(ms), pages, plan)
		if pages > c.maxPages {
			t.Errorf("%d machines, %+v: %d b-tree pages read, more than %d:\n%s", n, c.f, pages, c.maxPages, plan)
		}
		for _, line := range strings.Split(plan, "\n") {
			full := strings.HasPrefix(line, "SCAN ") && !strings.HasPrefix(line, "SCAN pg") && !strings.Contains(line, "INDEX")
			sorted := strings.Contains(line, "TEMP B-TREE FOR ORDER BY") && !strings.HasPrefix(line, "outer")
			if full || sorted && c.f.Prefix == "" {
				t.Errorf("%d machines, %+v: %q in the plan:\n%s", n, c.f, line, plan)
			}
		}
	}
}

// sqlitePlan is EXPLAIN QUERY PLAN of the page's query, one line per step;
// the steps of the outer query (after the page's IDs) start with "outer".
func sqlitePlan(t *testing.T, db *DB, f MachineFilter, p Page) string {
	query, args := db.pageQuery(f, p)
	rows, err := db.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	mustNil(t, err)
	defer rows.Close()
	parent := map[int]int{}
	var lines []string
	for rows.Next() {
		var id, par, notused int
		var detail string
		mustNil(t, rows.Scan(&id, &par, &notused, &detail))
		parent[id] = par
		depth := 0
		for p := par; p != 0; p = parent[p] {
			depth++
		}
		if depth == 0 && !strings.HasPrefix(detail, "CO-ROUTINE") && !strings.HasPrefix(detail, "MATERIALIZE") {
			detail = "outer " + detail
		}
		lines = append(lines, detail)
	}
	mustNil(t, rows.Err())
	return strings.Join(lines, "\n")
}

// pagesRead runs the page's query on one SQLite connection and returns
// the b-tree pages it read (page cache hits and misses).
func pagesRead(t *testing.T, db *DB, f MachineFilter, p Page) int {
	t.Helper()
	ctx := context.Background()
	conn, err := db.r.Conn(ctx)
	mustNil(t, err)
	defer conn.Close()
	status := func(reset bool) int {
		n := 0
		mustNil(t, conn.Raw(func(dc any) error {
			for _, op := range []sqlite.DBStatusOp{sqlite.DBStatusCacheHit, sqlite.DBStatusCacheMiss} {
				cur, _, err := dc.(sqlite.DBStatus).Status(op, reset)
				if err != nil {
					return err
				}
				n += cur
			}
			return nil
		}))
		return n
	}
	status(true)
	query, args := db.pageQuery(f, p)
	rows, err := conn.QueryContext(ctx, query, args...)
	mustNil(t, err)
	for rows.Next() {
	}
	mustNil(t, rows.Err())
	rows.Close()
	return status(false)
}

// BenchmarkMachinePage: a page of 100 at a random cursor of a 50,000-machine
// fleet, unfiltered and by state (1%), on SQLite and PostgreSQL (the
// store's part of GET /api/v1/machines).
func BenchmarkMachinePage(b *testing.B) {
	for _, be := range []struct {
		name string
		dsn  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "bench.db") }},
		{"postgres", func(b *testing.B) string { return pgtest.DSN(b) }},
	} {
		b.Run(be.name, func(b *testing.B) {
			db, err := Open(context.Background(), Options{DSN: be.dsn(b), Box: testBox})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const n = 50_000
			fillFleetSQL(b, db, n)
			for _, f := range []MachineFilter{{}, {State: "NotResponding"}} {
				b.Run(fmt.Sprintf("state=%s", f.State), func(b *testing.B) {
					r := rand.New(rand.NewPCG(1, 2))
					for b.Loop() {
						ms, _, _, err := db.MachinePage(context.Background(), f, Page{After: r.Int64N(n), Limit: 100})
						if err != nil || len(ms) == 0 && f.State == "" {
							b.Fatal(len(ms), err)
						}
					}
				})
			}
		})
	}
}
