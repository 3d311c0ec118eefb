package sqlstore

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

// Every test in the shared suite runs against SQLite (in t.TempDir()) and
// PostgreSQL (pgtest: LIGHTSOUT_TEST_POSTGRES or a throwaway cluster).

func TestMain(m *testing.M) {
	// The PostgreSQL subtests mostly wait on the server (CREATE DATABASE,
	// round trips): run more of them at once than there are CPUs, unless
	// -test.parallel was given.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", strconv.Itoa(max(8, runtime.GOMAXPROCS(0))))
	}
	os.Exit(pgtest.Main(m))
}

var testBox = func() *secret.Box {
	b, err := secret.NewRandomBox()
	if err != nil {
		panic(err)
	}
	return b
}()

type backend struct {
	name string
	dsn  func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "lightsout.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openT opens dsn with box and closes it when t ends.
func openT(t *testing.T, dsn string, box *secret.Box) *DB {
	t.Helper()
	db, err := Open(ctxT(t), Options{DSN: dsn, Box: box})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// eachStore runs fn against a fresh database of every backend, in parallel
// subtests.
func eachStore(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, openT(t, b.dsn(t), testBox))
		})
	}
}

// eachDSN is eachStore for tests that open (and reopen) databases
// themselves.
func eachDSN(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.dsn(t))
		})
	}
}

// wantFieldErr fails t unless err is a *FieldError on field, matching
// sentinel (nil: any) and mentioning every string in subs.
func wantFieldErr(t *testing.T, err error, field string, sentinel error, subs ...string) *FieldError {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v (%T), want *FieldError on %q", err, err, field)
	}
	if fe.Field != field {
		t.Errorf("FieldError.Field = %q, want %q (%v)", fe.Field, field, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("err = %v, want errors.Is %v", err, sentinel)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err %q does not mention %q", err, s)
		}
	}
	return fe
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// count returns the number of rows of table (raw SQL).
func count(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	mustNil(t, db.read().row(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

// addMachine adds a machine with one IPMI account at addr.
func addMachine(t *testing.T, db *DB, name, addr string) (Machine, Account) {
	t.Helper()
	ctx := context.Background()
	m := Machine{Name: name}
	mustNil(t, db.AddMachine(ctx, &m))
	a := Account{MachineID: m.ID, Protocol: "ipmi", Address: addr, User: "admin", Password: []byte("pw-" + name)}
	mustNil(t, db.AddAccount(ctx, &a))
	return m, a
}
