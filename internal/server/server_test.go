package server

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/secret"
)

// A second server on the first one's database without its key is refused
// with the remedy (copy secret.key), and the key it would have made is not
// left behind; with the copied key it starts.
func TestSecondServerNeedsTheSameKey(t *testing.T) {
	ctx := context.Background()
	first := t.TempDir()
	db := filepath.Join(first, "lightsout.db")
	s1, err := New(ctx, Config{DataDir: first})
	if err != nil {
		t.Fatal(err)
	}
	s1.Close()

	second := t.TempDir()
	_, err = New(ctx, Config{DataDir: second, DB: db})
	if !errors.Is(err, secret.ErrDecrypt) || !strings.Contains(err.Error(), "copy secret.key") || !strings.Contains(err.Error(), filepath.Join(second, "secret.key")) {
		t.Fatalf("second server with its own key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(second, "secret.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused server left a key behind: %v", err)
	}

	key, err := os.ReadFile(filepath.Join(first, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(second, "secret.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := New(ctx, Config{DataDir: second, DB: db})
	if err != nil {
		t.Fatalf("with the copied key: %v", err)
	}
	s2.Close()
}

// A second server on a SQLite database another server runs on is refused
// at start, naming the lock and the remedy (PostgreSQL for several
// instances), whether through the same data directory or through --db;
// once the first stops, it starts.
func TestSecondServerOnSQLiteRefused(t *testing.T) {
	ctx := context.Background()
	first := t.TempDir()
	s1, err := New(ctx, Config{DataDir: first})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	_, err = New(ctx, Config{DataDir: first})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "process ") || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("second server on the same data directory: %v", err)
	}
	second := t.TempDir()
	_, err = New(ctx, Config{DataDir: second, DB: filepath.Join(first, "lightsout.db"), KeyFile: filepath.Join(first, "secret.key")})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), filepath.Join(first, "lightsout.db.lock")) {
		t.Fatalf("second server through --db: %v", err)
	}
	s1.Close()
	s2, err := New(ctx, Config{DataDir: second, DB: filepath.Join(first, "lightsout.db"), KeyFile: filepath.Join(first, "secret.key")})
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	s2.Close()
}
