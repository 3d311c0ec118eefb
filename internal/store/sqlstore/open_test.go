package sqlstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/secret"
)

func TestMigrations(t *testing.T) {
	eachDSN(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		db := openT(t, dsn, testBox)
		addMachine(t, db, "m", "10.0.0.1")
		mustNil(t, db.Close())
		// Reopening (even concurrently) changes nothing.
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := Open(ctx, Options{DSN: dsn, Box: testBox})
				if err == nil {
					err = db.Close()
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			mustNil(t, err)
		}
		db = openT(t, dsn, testBox)
		if n := count(t, db, "schema_migrations"); n != SchemaVersion() {
			t.Fatalf("schema_migrations has %d rows, want %d", n, SchemaVersion())
		}
		if _, err := db.Machine(ctx, "m"); err != nil {
			t.Fatalf("data lost on reopen: %v", err)
		}
		// A newer schema is refused.
		_, err := db.w.ExecContext(ctx, db.d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
			SchemaVersion()+1, "9999_future.sql", 0)
		mustNil(t, err)
		mustNil(t, db.Close())
		_, err = Open(ctx, Options{DSN: dsn, Box: testBox})
		if err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), strconv.Itoa(SchemaVersion()+1)) {
			t.Fatalf("Open of a newer schema: %v", err)
		}
	})
}

func TestSplitSQL(t *testing.T) {
	got := splitSQL("-- c\nCREATE TABLE a (\n  x INT\n);\n\nCREATE INDEX i ON a (x);\n-- end\nSELECT 1")
	want := []string{"CREATE TABLE a (\n  x INT\n);", "CREATE INDEX i ON a (x);", "SELECT 1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("splitSQL = %q", got)
	}
	for _, d := range []string{"sqlite", "postgres"} {
		ms, err := loadMigrations(d)
		mustNil(t, err)
		if len(ms) != SchemaVersion() {
			t.Fatalf("%s has %d migrations, sqlite %d", d, len(ms), SchemaVersion())
		}
	}
}

func TestOpenDSN(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	dir := t.TempDir()
	for _, tc := range []struct{ dsn, errSub string }{
		{"", "empty"},
		{"   ", "empty"},
		{":memory:", "file"},
		{"file:x.db?mode=memory", "file"},
		{filepath.Join(dir, "no", "such", "dir", "x.db"), "no such file"},
		{dir, "directory"},
		{"postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", "postgres"},
	} {
		db, err := Open(ctx, Options{DSN: tc.dsn})
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) accepted", tc.dsn)
			continue
		}
		if !strings.Contains(err.Error(), tc.errSub) {
			t.Errorf("Open(%q): %v; want it to mention %q", tc.dsn, err, tc.errSub)
		}
	}
	// sqlite: prefix; a path with URI-special characters.
	path := filepath.Join(dir, "we?ird #name%.db")
	db := openT(t, "sqlite:"+path, testBox)
	addMachine(t, db, "m", "10.0.0.1")
	mustNil(t, db.Close())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %q: %v", path, err)
	}
	db = openT(t, path, testBox)
	if _, err := db.Machine(ctx, "m"); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteFile(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "l.db")
	db := openT(t, path, testBox)
	addMachine(t, db, "m", "10.0.0.1")
	for _, f := range []string{path, path + "-wal"} {
		fi, err := os.Stat(f)
		mustNil(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", f, fi.Mode().Perm())
		}
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1"} {
		var v string
		mustNil(t, db.w.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&v))
		if v != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, v, want)
		}
	}
	var v string
	mustNil(t, db.r.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&v))
	if v != "1" {
		t.Errorf("reader foreign_keys = %s", v)
	}
}

// TestConcurrentWrites: many goroutines over two handles on one SQLite file
// (as two processes would) never see SQLITE_BUSY.
func TestConcurrentWrites(t *testing.T) {
	eachDSN(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		dbs := []*DB{openT(t, dsn, testBox), openT(t, dsn, testBox)}
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db := dbs[w%2]
				for i := 0; i < each; i++ {
					name := fmt.Sprintf("m-%d-%d", w, i)
					m := Machine{Name: name}
					if err := db.AddMachine(ctx, &m); err != nil {
						errs <- err
						return
					}
					a := Account{MachineID: m.ID, Protocol: "ipmi", Address: name}
					if err := db.AddAccount(ctx, &a); err != nil {
						errs <- err
						return
					}
					if err := db.SaveState(ctx, ChannelState{AccountID: a.ID, State: "Unknown"}, &Transition{}); err != nil {
						errs <- err
						return
					}
					if _, err := db.States(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := count(t, dbs[0], "transitions"); n != workers*each {
			t.Fatalf("%d transitions, want %d", n, workers*each)
		}
	})
}

const crashEnv = "LIGHTSOUT_STORE_CRASH_CHILD"

// crashBox has a fixed key: TestCrash and its child share it.
var crashBox, _ = secret.NewBox([]byte("0123456789abcdef0123456789abcdef"))

// TestCrashChild is the child of TestCrash: it writes audit entries to the
// SQLite file named by $LIGHTSOUT_STORE_CRASH_CHILD and prints each ID once
// Audit returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrash")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := Open(ctx, Options{DSN: path, Box: crashBox})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
		a := AuditEntry{Actor: "crash", Action: "write", Detail: strconv.Itoa(i), Result: "ok"}
		if err := db.Audit(ctx, &a); err != nil {
			fmt.Fprintln(out, "error:", err)
			out.Flush()
			os.Exit(1)
		}
		fmt.Fprintln(out, a.ID)
		out.Flush()
	}
	os.Exit(0)
}

// TestCrash kills a writer with SIGKILL and checks that every write it had
// acknowledged survived.
func TestCrash(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "crash.db")
	db := openT(t, path, crashBox) // create and migrate up front
	mustNil(t, db.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	mustNil(t, err)
	cmd.Stderr = os.Stderr
	mustNil(t, cmd.Start())
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	const want = 300
	acked := make(chan int64, want)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			id, err := strconv.ParseInt(sc.Text(), 10, 64)
			if err != nil {
				readErr <- fmt.Errorf("child said %q", sc.Text())
				return
			}
			select {
			case acked <- id:
			default: // enough: stop reading, the child blocks or is killed
				readErr <- nil
				return
			}
		}
		readErr <- fmt.Errorf("child's output ended: %v", sc.Err())
	}()
	var ids []int64
	timeout := time.After(30 * time.Second)
	for len(ids) < want {
		select {
		case id := <-acked:
			ids = append(ids, id)
		case err := <-readErr:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatalf("only %d acknowledged writes after 30 s", len(ids))
		}
	}
	// Kill by PID while the child is mid-write.
	mustNil(t, cmd.Process.Kill())
	cmd.Wait()
	killed = true

	db = openT(t, path, crashBox)
	rows, err := db.read().query(ctx, "SELECT id FROM audit")
	mustNil(t, err)
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		mustNil(t, rows.Scan(&id))
		have[id] = true
	}
	mustNil(t, rows.Err())
	rows.Close()
	for _, id := range ids {
		if !have[id] {
			t.Errorf("acknowledged audit entry %d lost in the crash", id)
		}
	}
	t.Logf("%d acknowledged writes, %d rows after SIGKILL", len(ids), len(have))
	// The database still takes writes.
	mustNil(t, db.Audit(ctx, &AuditEntry{Actor: "t", Action: "after", Result: "ok"}))
}
