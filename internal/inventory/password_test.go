package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "s3cr3t-Pa55"

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("plain", secret)
	write("newline", secret+"\n")
	write("crlf", secret+"\r\n\r\n")
	write("inner", "a b\nc\n")
	abs := write("abs", secret+"\n")
	write("empty", "")
	write("blank", "\r\n\n")
	write("huge", strings.Repeat(secret, 1000))
	os.Mkdir(filepath.Join(dir, "subdir"), 0o755)

	for file, want := range map[string]string{"plain": secret, "newline": secret, "crlf": secret, "inner": "a b\nc", abs: secret} {
		pw, err := Machine{Name: "n", PasswordFile: file}.Password(dir)
		if err != nil || string(pw) != want {
			t.Errorf("%s: %q, %v; want %q", file, pw, err, want)
		}
	}
	for file, want := range map[string]string{
		"empty": "is empty", "blank": "is empty", "missing": "no such file", "subdir": "is a directory", "huge": "larger than",
	} {
		_, err := Machine{Name: "n", PasswordFile: file}.Password(dir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: error %v; want it to name the file and say %q", file, err, want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error leaks the password: %v", file, err)
		}
		if errors.Is(err, ErrNoPassword) {
			t.Errorf("%s: a broken file is not ErrNoPassword", file)
		}
	}
	if os.Geteuid() != 0 {
		p := write("locked", secret)
		os.Chmod(p, 0)
		_, err := Machine{Name: "n", PasswordFile: "locked"}.Password(dir)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("unreadable file: %v", err)
		}
	}
}

func TestPasswordEnv(t *testing.T) {
	t.Setenv("LIGHTSOUT_TEST_PW", secret)
	t.Setenv("LIGHTSOUT_TEST_EMPTY", "")
	pw, err := Machine{Name: "n", PasswordEnv: "LIGHTSOUT_TEST_PW"}.Password("")
	if err != nil || string(pw) != secret {
		t.Errorf("env: %q, %v", pw, err)
	}
	for name, want := range map[string]string{"LIGHTSOUT_TEST_EMPTY": "is empty", "LIGHTSOUT_TEST_UNSET_X": "is not set"} {
		_, err := Machine{Name: "n", PasswordEnv: name}.Password("")
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPasswordNone(t *testing.T) {
	_, err := Machine{Name: "node-7"}.Password("/")
	if !errors.Is(err, ErrNoPassword) || !strings.Contains(err.Error(), `"node-7"`) {
		t.Errorf("no source: %v", err)
	}
	_, err = Machine{Name: "n", PasswordFile: "x", PasswordEnv: "Y"}.Password("/")
	if err == nil || errors.Is(err, ErrNoPassword) {
		t.Errorf("both sources: %v", err)
	}
}

func TestPasswordsReadsEachFileOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pw")
	if err := os.WriteFile(path, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Passwords{Dir: dir}
	a, err := p.Of(Machine{Name: "a", PasswordFile: "pw"})
	if err != nil || string(a) != "first" {
		t.Fatalf("a: %q %v", a, err)
	}
	os.WriteFile(path, []byte("second\n"), 0o600) // not read again
	b, err := p.Of(Machine{Name: "b", PasswordFile: path})
	if err != nil || string(b) != "first" {
		t.Errorf("b: %q %v (the file must be read once)", b, err)
	}
	if _, err := p.Of(Machine{Name: "c"}); !errors.Is(err, ErrNoPassword) {
		t.Errorf("c: %v", err)
	}
	if _, err := p.Of(Machine{Name: "d", PasswordFile: "missing"}); err == nil || !strings.Contains(err.Error(), `machine "d"`) {
		t.Errorf("d: %v", err)
	}
}
