// Package pgtest gives tests a PostgreSQL database of their own.
//
// [DSN] returns the URL of a fresh, empty database on every call. The server
// is, in order of preference:
//
//  1. the one named by LIGHTSOUT_TEST_POSTGRES (a postgres:// URL of a role
//     that may CREATE DATABASE), or
//  2. a throwaway cluster this package starts once per test binary from the
//     Debian postgresql package's binaries (/usr/lib/postgresql/*/bin, or
//     initdb on PATH) in a temporary directory, listening on 127.0.0.1 on a
//     free port with its unix socket in that directory; as root it runs as
//     the postgres user, since PostgreSQL refuses to run as root.
//
// Without either the test is skipped with a reason (failed under
// LIGHTSOUT_REQUIRE_PEERS=1, see peertest). Call [Main] from TestMain so the
// cluster is stopped and its directory removed when the tests end; without
// it the cluster still stops when the test binary exits (parent-death
// signal), but its directory stays behind.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/lightsout/lightsout/internal/peertest"
)

// EnvDSN names the environment variable with an existing server to use.
const EnvDSN = "LIGHTSOUT_TEST_POSTGRES"

var (
	mu      sync.Mutex
	srv     *server
	skip    string // non-empty: why no server is available
	failure error  // starting one failed
	counter int
)

type server struct {
	base  *url.URL // admin URL (database "postgres" or the env's)
	admin *sql.DB
	// throwaway cluster only:
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster exited
	// how to start it again (Resume)
	bin, data, logPath string
	port               int
	cred               *syscall.Credential
}

// Available reports whether DSN can provide a database, starting the
// throwaway cluster if needed; the string says why not.
func Available() (bool, string) {
	mu.Lock()
	defer mu.Unlock()
	ensure()
	switch {
	case skip != "":
		return false, skip
	case failure != nil:
		return false, failure.Error()
	}
	return true, ""
}

// DSN returns the URL of a new empty database, dropped when t ends. It
// skips t (or fails it, when peers are required) if no PostgreSQL is
// available.
func DSN(t testing.TB) string {
	t.Helper()
	mu.Lock()
	ensure()
	s, sk, fail := srv, skip, failure
	counter++
	n := counter
	mu.Unlock()
	if sk != "" {
		peertest.Missing(t, sk)
	}
	if fail != nil {
		t.Fatalf("pgtest: %v", fail)
	}
	name := fmt.Sprintf("lightsout_test_%d_%d", os.Getpid(), n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: dropping database %s: %v", name, err)
		}
	})
	u := *s.base
	u.Path = "/" + name
	return u.String()
}

// Main runs the tests and then stops the throwaway cluster, if one was
// started. Use it as: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the throwaway cluster (by its PID: fast shutdown, then kill
// after 10 s) and removes its directory. Later DSN calls start a new one.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		return
	}
	srv.admin.Close()
	if srv.cmd != nil {
		srv.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-srv.done:
		case <-time.After(10 * time.Second):
			srv.cmd.Process.Kill()
			<-srv.done
		}
		os.RemoveAll(srv.dir)
	}
	srv, skip, failure = nil, "", nil
}

// ensure sets srv, skip or failure. Called with mu held.
func ensure() {
	if srv != nil || skip != "" || failure != nil {
		return
	}
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		srv, failure = external(dsn)
	} else {
		srv, skip, failure = startCluster()
	}
}

func external(dsn string) (*server, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s must be a postgres:// URL", EnvDSN)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvDSN, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s=%s: %w", EnvDSN, u.Redacted(), err)
	}
	return &server{base: u, admin: db}, nil
}

// binDir finds the directory with initdb and postgres.
func binDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		d = filepath.Dir(d)
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	return ""
}

func pgVersion(initdb string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(initdb))), 64)
	return v
}

func startCluster() (s *server, skipReason string, err error) {
	bin := binDir()
	if bin == "" {
		return nil, "PostgreSQL not installed (Debian: postgresql; no initdb in /usr/lib/postgresql/*/bin or on PATH) and " + EnvDSN + " not set", nil
	}
	var cred *syscall.Credential
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, "running as root and there is no postgres user to run PostgreSQL as", nil
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp(clusterParent(cred != nil), "lightsout-pgtest-")
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, "", err
		}
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "lightsout",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("initdb: %v\n%s", err, tail(out))
	}
	logPath := filepath.Join(dir, "postgres.log")
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		s, err := startPostmaster(bin, dir, data, logPath, port, cred)
		if err == nil {
			s.bin, s.data, s.logPath, s.port, s.cred = bin, data, logPath, port, cred
			return s, "", nil
		}
		if attempt == 2 {
			return nil, "", err
		}
	}
}

func startPostmaster(bin, dir, data, logPath string, port int, cred *syscall.Credential) (*server, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=400", "-c", "shared_buffers=32MB", "-c", "logging_collector=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	// Stop the cluster if the test binary dies without calling Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	base := &url.URL{Scheme: "postgres", User: url.User("lightsout"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path: "/postgres", RawQuery: "sslmode=disable"}
	admin, err := sql.Open("pgx", base.String())
	if err != nil {
		cmd.Process.Kill()
		<-done
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = admin.PingContext(ctx)
		cancel()
		if err == nil {
			return &server{base: base, admin: admin, dir: dir, cmd: cmd, done: done}, nil
		}
		select {
		case <-done:
			admin.Close()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres exited at start: %s", tail(log))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			admin.Close()
			cmd.Process.Kill()
			<-done
			log, _ := os.ReadFile(logPath)
			return nil, errors.Join(fmt.Errorf("postgres not ready after 30 s: %w", err), errors.New(tail(log)))
		}
	}
}

// clusterParent is where the cluster's directory goes: the temporary
// directory, unless the postgres user could not reach it.
func clusterParent(asOtherUser bool) string {
	dir := os.TempDir()
	if !asOtherUser {
		return dir
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if p == filepath.Dir(p) {
			return dir
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// Database creates a new empty database outside a test (the benchmarks):
// on the server LIGHTSOUT_TEST_POSTGRES names, or on the throwaway
// cluster, started if needed (stop it with [Stop]). drop removes the
// database. postmaster is the throwaway cluster's postmaster PID (0 for an
// external server): it and its children (the backends) are the database's
// CPU.
func Database(ctx context.Context, prefix string) (dsn string, postmaster int, drop func() error, err error) {
	mu.Lock()
	ensure()
	s, sk, fail := srv, skip, failure
	counter++
	n := counter
	mu.Unlock()
	switch {
	case sk != "":
		return "", 0, nil, errors.New(sk)
	case fail != nil:
		return "", 0, nil, fail
	}
	name := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), n)
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", 0, nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	u := *s.base
	u.Path = "/" + name
	if s.cmd != nil {
		postmaster = s.cmd.Process.Pid
	}
	return u.String(), postmaster, drop, nil
}

// Pause stops the throwaway cluster's postmaster (fast shutdown: every
// connection is cut) and keeps its data: tests of what happens while the
// database is unreachable. Resume starts it again on the same port.
func Pause() error {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil || srv.cmd == nil {
		return errors.New("pgtest: no throwaway cluster to pause (an external server, or none started)")
	}
	srv.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-srv.done:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("pgtest: the postmaster did not stop within 30 s")
	}
}

// Resume starts a paused throwaway cluster again on the same port and
// data, and waits until it answers.
func Resume() error {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil || srv.cmd == nil {
		return errors.New("pgtest: no throwaway cluster to resume")
	}
	select {
	case <-srv.done:
	default:
		return errors.New("pgtest: the cluster is running")
	}
	n, err := startPostmaster(srv.bin, srv.dir, srv.data, srv.logPath, srv.port, srv.cred)
	if err != nil {
		return err
	}
	// Keep the admin pool the tests' cleanups hold (it reconnects).
	n.admin.Close()
	n.admin = srv.admin
	n.bin, n.data, n.logPath, n.port, n.cred = srv.bin, srv.data, srv.logPath, srv.port, srv.cred
	srv = n
	return nil
}
