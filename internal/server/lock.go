package server

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrInUse: another server already runs on this SQLite database.
var ErrInUse = errors.New("the SQLite database is in use by another lightsout server")

// lockSQLite takes an exclusive lock beside a SQLite database (PATH.lock,
// holding the owner's process ID) for as long as the server runs: SQLite
// is single-instance, and a second server on the same file would check
// every BMC a second time. Several instances share a PostgreSQL database
// instead (docs/scale-out.md).
func lockSQLite(dbPath string) (*os.File, error) {
	p := dbPath + ".lock"
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(p)
		f.Close()
		who := "another process"
		if pid := strings.TrimSpace(string(b)); pid != "" {
			who = "process " + pid
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s holds %s\nremedy: SQLite is single-instance: stop that server first, or run several instances on one PostgreSQL database (--db postgres://…, docs/scale-out.md)", ErrInUse, who, p)
		}
		return nil, fmt.Errorf("lock file %s: %w", p, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}
