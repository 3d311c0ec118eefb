package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestRoundtrip(t *testing.T) {
	b, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range [][]byte{{}, []byte("x"), []byte("correct horse battery staple"), bytes.Repeat([]byte{0xff}, 4096)} {
		ct, err := b.Seal(pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(pt)+Overhead {
			t.Errorf("sealed %d bytes into %d, want %d", len(pt), len(ct), len(pt)+Overhead)
		}
		if len(pt) > 4 && bytes.Contains(ct, pt) {
			t.Errorf("ciphertext contains the plaintext")
		}
		got, err := b.Open(ct)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Open(Seal(%q)) = %q", pt, got)
		}
	}
	// Two seals of one value differ (random nonce).
	c1, _ := b.Seal([]byte("same"))
	c2, _ := b.Seal([]byte("same"))
	if bytes.Equal(c1, c2) {
		t.Error("two seals of one plaintext are identical")
	}
}

func TestReloadSameKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	b1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := b1.Seal([]byte("secret"))
	b2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b2.Open(ct); err != nil || string(pt) != "secret" {
		t.Fatalf("reloaded key: Open = %q, %v", pt, err)
	}
}

func TestConcurrentCreateAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	boxes := make([]*Box, 8)
	var wg sync.WaitGroup
	for i := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			boxes[i] = b
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ct, _ := boxes[0].Seal([]byte("v"))
	for i, b := range boxes {
		if _, err := b.Open(ct); err != nil {
			t.Errorf("box %d has another key: %v", i, err)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".lightsout-key-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestWrongKey(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateKey(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKey(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := a.Seal([]byte("password"))
	if _, err := b.Open(ct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Open with another key: err = %v, want ErrDecrypt", err)
	}
}

func TestTampered(t *testing.T) {
	b, err := NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := b.Seal([]byte("password"))
	tests := []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"version", func(c []byte) []byte { c[0] = 2; return c }},
		{"nonce", func(c []byte) []byte { c[3] ^= 1; return c }},
		{"body", func(c []byte) []byte { c[1+nonceSize] ^= 0x80; return c }},
		{"tag", func(c []byte) []byte { c[len(c)-1] ^= 1; return c }},
		{"truncated", func(c []byte) []byte { return c[:len(c)-1] }},
		{"short", func(c []byte) []byte { return c[:5] }},
		{"empty", func(c []byte) []byte { return nil }},
		{"appended", func(c []byte) []byte { return append(c, 0) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.mod(append([]byte(nil), ct...))
			if pt, err := b.Open(c); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open(tampered) = %q, %v; want ErrDecrypt", pt, err)
			}
		})
	}
}

func TestKeyFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if _, err := LoadOrCreateKey(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	if fi.Size() != KeySize {
		t.Fatalf("key file size %d, want %d", fi.Size(), KeySize)
	}
}

func TestRefuseBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, KeySize)
	tests := []struct {
		name    string
		setup   func(path string) error
		wantSub []string
	}{
		{"mode 0644", func(p string) error { return writeMode(p, key, 0o644) }, []string{"0644", "chmod 600"}},
		{"mode 0640", func(p string) error { return writeMode(p, key, 0o640) }, []string{"0640"}},
		{"mode 0604", func(p string) error { return writeMode(p, key, 0o604) }, []string{"0604"}},
		{"short", func(p string) error { return writeMode(p, key[:10], 0o600) }, []string{"10 bytes"}},
		{"long", func(p string) error { return writeMode(p, append(key, 1), 0o600) }, []string{"33 bytes"}},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }, []string{"not a regular file"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "key"+string(rune('a'+i)))
			if err := tc.setup(path); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateKey(path)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, s := range append(tc.wantSub, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func writeMode(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // beat the umask
}

func TestNewBoxKeySize(t *testing.T) {
	if _, err := NewBox(make([]byte, 16)); err == nil {
		t.Fatal("accepted a 16-byte key")
	}
}

// TestBound: a bound value opens only with its binding; Open refuses it; a
// version 1 value is ErrUnbound to OpenBound, so the caller can re-seal it.
func TestBound(t *testing.T) {
	b, err := NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	bind := []byte("ipmi\x00192.0.2.7\x00623")
	ct, err := b.SealBound([]byte("hunter2"), bind)
	if err != nil {
		t.Fatal(err)
	}
	if !Bound(ct) {
		t.Error("Bound(SealBound(…)) = false")
	}
	got, err := b.OpenBound(ct, bind)
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("OpenBound = %q, %v", got, err)
	}
	for _, other := range []string{"redfish\x00192.0.2.7\x00623", "ipmi\x00192.0.2.8\x00623", "ipmi\x00192.0.2.7\x00624", ""} {
		if _, err := b.OpenBound(ct, []byte(other)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("OpenBound with binding %q: %v, want ErrDecrypt", other, err)
		}
	}
	if _, err := b.Open(ct); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(bound value): %v, want ErrDecrypt", err)
	}
	// Changing the version byte to 1 does not turn it into an unbound value.
	forged := append([]byte{version1}, ct[1:]...)
	if _, err := b.Open(forged); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(bound value relabelled version 1): %v, want ErrDecrypt", err)
	}
	v1, _ := b.Seal([]byte("old"))
	if _, err := b.OpenBound(v1, bind); !errors.Is(err, ErrUnbound) {
		t.Errorf("OpenBound(version 1): %v, want ErrUnbound", err)
	}
	if Bound(v1) {
		t.Error("Bound(Seal(…)) = true")
	}
}
