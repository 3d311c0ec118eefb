package inventory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrNoPassword is returned (wrapped) by [Machine.Password] when the
// machine names neither a password file nor a password variable, so the
// caller can fall back to another source (a prompt, LIGHTSOUT_PASSWORD).
var ErrNoPassword = errors.New("no password_file or password_env set")

// maxPasswordFile bounds how much of a password file is read. BMC
// passwords are at most a few hundred bytes; anything bigger is the wrong
// file.
const maxPasswordFile = 4096

// Password returns the machine's BMC password from its password_file (a
// relative path is resolved against dir, usually Inventory.Dir; trailing
// newlines and carriage returns are stripped) or from its password_env
// environment variable. With neither set it returns an error wrapping
// [ErrNoPassword]. Errors name the file or variable, never the password.
func (m Machine) Password(dir string) ([]byte, error) {
	return m.password(dir, ReadPasswordFile)
}

// Passwords reads machines' (and enclosure managers') passwords like
// [Machine.Password], reading each password file once: a fleet of
// thousands usually shares a few files.
type Passwords struct {
	Dir   string
	files map[string][]byte
}

// Of returns m's password.
func (p *Passwords) Of(m Machine) ([]byte, error) {
	return m.password(p.Dir, p.read)
}

// OfEnclosure returns e's password.
func (p *Passwords) OfEnclosure(e Enclosure) ([]byte, error) {
	return e.password(p.Dir, p.read)
}

// read is ReadPasswordFile, remembering what it read.
func (p *Passwords) read(path string) ([]byte, error) {
	if pw, ok := p.files[path]; ok {
		return pw, nil
	}
	pw, err := ReadPasswordFile(path)
	if err == nil {
		if p.files == nil {
			p.files = map[string][]byte{}
		}
		p.files[path] = pw
	}
	return pw, err
}

// Password returns the enclosure manager's password the way
// [Machine.Password] does: from its password_file (relative to dir) or its
// password_env variable, or an error wrapping [ErrNoPassword] when it
// names neither. Errors name the enclosure and the file or variable.
func (e Enclosure) Password(dir string) ([]byte, error) {
	return e.password(dir, ReadPasswordFile)
}

func (m Machine) password(dir string, readFile func(string) ([]byte, error)) ([]byte, error) {
	return readPassword(fmt.Sprintf("machine %q", m.Name), m.PasswordFile, m.PasswordEnv, dir, readFile)
}

func (e Enclosure) password(dir string, readFile func(string) ([]byte, error)) ([]byte, error) {
	return readPassword(fmt.Sprintf("enclosure %q", e.Name), e.PasswordFile, e.PasswordEnv, dir, readFile)
}

// readPassword reads the password from file (relative to dir) or the
// variable env; who names the owner in errors.
func readPassword(who, file, env, dir string, readFile func(string) ([]byte, error)) ([]byte, error) {
	switch {
	case file != "" && env != "":
		return nil, fmt.Errorf("%s: both password_file and password_env are set; give only one", who)
	case file != "":
		path := file
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		pw, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: password_file: %w", who, err)
		}
		return pw, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, fmt.Errorf("%s: password_env: environment variable %s is not set", who, env)
		}
		if v == "" {
			return nil, fmt.Errorf("%s: password_env: environment variable %s is empty", who, env)
		}
		return []byte(v), nil
	}
	return nil, fmt.Errorf("%s: %w", who, ErrNoPassword)
}

// ReadPasswordFile reads a password file the way an inventory's
// password_file is read: first line, trailing newline stripped, bounded
// size; errors name the file, never the content.
func ReadPasswordFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *fs.PathError: "open <path>: permission denied" and the like
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a password file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		// Wrapped errors from reading carry the path, not the content.
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxPasswordFile {
		clear(b)
		return nil, fmt.Errorf("%s is larger than %d bytes; is it really a password file?", path, maxPasswordFile)
	}
	end := len(b)
	for end > 0 && (b[end-1] == '\n' || b[end-1] == '\r') {
		end--
	}
	if end == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b[:end], nil
}
