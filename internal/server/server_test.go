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
