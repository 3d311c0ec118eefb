// Package secret encrypts credentials at rest. A [Box] holds one 256-bit key
// (kept in a key file readable by its owner only) and seals values with
// AES-256-GCM. A sealed value is
//
//	version (1 byte) | nonce (12 random bytes) | ciphertext | GCM tag (16 bytes)
//
// Version 1 ([Box.Seal]) authenticates the version byte as additional data.
// Version 2 ([Box.SealBound]) also authenticates a binding: what the value
// is for (for a BMC password, the account's protocol, address and port), so
// the value opens only for that same binding ([Box.OpenBound]). Opening a
// value with the wrong key, the wrong binding, or a value that was altered
// fails with [ErrDecrypt].
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// version1 marks AES-256-GCM with a 12-byte random nonce; version2 the same
// with a binding in the additional data.
const (
	version1 byte = 1
	version2 byte = 2
)

const nonceSize = 12

// Overhead is how many bytes Seal adds to a plaintext.
const Overhead = 1 + nonceSize + 16

// ErrDecrypt: a sealed value cannot be opened — the key is not the one that
// sealed it, the binding is not the one it was sealed for, or the value was
// altered or truncated.
var ErrDecrypt = errors.New("cannot decrypt: wrong key or corrupted value")

// ErrUnbound: OpenBound was given a version 1 value, sealed before values
// were bound; the caller may open it with Open and seal it again bound.
var ErrUnbound = errors.New("sealed value is not bound (version 1)")

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a KeySize-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Box{aead: aead}, nil
}

// NewRandomBox returns a Box with a fresh random key, for tests and for
// values that need not outlive the process.
func NewRandomBox() (*Box, error) {
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("secret: generating key: %w", err)
	}
	return NewBox(key)
}

// LoadOrCreateKey reads the key in the file at path, creating the file with
// a new random key (mode 0600, never overwriting an existing file) when it
// does not exist. An existing key file that group or others may access, that
// is not a regular file, or that does not hold exactly KeySize bytes is
// refused.
func LoadOrCreateKey(path string) (*Box, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
		if errors.Is(err, fs.ErrExist) { // lost a race with another process
			key, err = readKey(path)
		}
	}
	if err != nil {
		return nil, err
	}
	return NewBox(key)
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret: key file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret: refusing key file %s: mode %04o lets group or others access it; run chmod 600 %s", path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("secret: reading key file %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: key file %s holds %d bytes, want %d (damaged or not a lightsout key)", path, len(key), KeySize)
	}
	return key, nil
}

// createKey writes a new key to path, which must not exist. The key is
// written to a private temporary file first and linked into place, so the
// path never names a partial key, even after a crash.
func createKey(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("secret: generating key: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".lightsout-key-*") // O_EXCL, mode 0600
	if err != nil {
		return nil, fmt.Errorf("secret: creating key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secret: creating key file: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secret: writing key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secret: writing key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("secret: writing key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// No hard links on this file system: fall back to an exclusive
		// create of the final path.
		f, err2 := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err2 != nil {
			if errors.Is(err2, fs.ErrExist) {
				return nil, err2
			}
			return nil, fmt.Errorf("secret: creating key file: %w", err2)
		}
		_, err2 = f.Write(key)
		if err2 == nil {
			err2 = f.Sync()
		}
		if cerr := f.Close(); err2 == nil {
			err2 = cerr
		}
		if err2 != nil {
			os.Remove(path)
			return nil, fmt.Errorf("secret: writing key file %s: %w", path, err2)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the new name durable; best effort
		d.Close()
	}
	return key, nil
}

// Seal encrypts plaintext with a fresh random nonce.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, Overhead+len(plaintext))
	out[0] = version1
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("secret: generating nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:1+nonceSize], plaintext, out[:1]), nil
}

// SealBound encrypts plaintext bound to binding: OpenBound opens it only
// with the same binding. The binding is authenticated, not encrypted or
// stored: the caller keeps it (e.g. the account's endpoint columns).
func (b *Box) SealBound(plaintext, binding []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, Overhead+len(plaintext))
	out[0] = version2
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("secret: generating nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:1+nonceSize], plaintext, boundAD(out[0], binding)), nil
}

// boundAD is the additional data of a version 2 value: the version byte,
// then the binding.
func boundAD(version byte, binding []byte) []byte {
	ad := make([]byte, 0, 1+len(binding))
	ad = append(ad, version)
	return append(ad, binding...)
}

// OpenBound decrypts a value made by SealBound with the same binding. A
// value sealed for another binding fails with ErrDecrypt; a version 1 value
// (made by Seal) fails with ErrUnbound, so that the caller decides whether
// to accept and re-seal it.
func (b *Box) OpenBound(ciphertext, binding []byte) ([]byte, error) {
	if len(ciphertext) < Overhead {
		return nil, fmt.Errorf("secret: sealed value is %d bytes, shorter than the %d-byte minimum: %w", len(ciphertext), Overhead, ErrDecrypt)
	}
	switch ciphertext[0] {
	case version2:
	case version1:
		return nil, fmt.Errorf("secret: %w", ErrUnbound)
	default:
		return nil, fmt.Errorf("secret: unknown sealed-value version %d: %w", ciphertext[0], ErrDecrypt)
	}
	pt, err := b.aead.Open(nil, ciphertext[1:1+nonceSize], ciphertext[1+nonceSize:], boundAD(ciphertext[0], binding))
	if err != nil {
		return nil, fmt.Errorf("secret: %w (the key, or what the value is bound to, is not the one it was sealed with)", ErrDecrypt)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// Bound reports whether a sealed value is bound (version 2).
func Bound(ciphertext []byte) bool { return len(ciphertext) > 0 && ciphertext[0] == version2 }

// Open decrypts a value made by Seal. It fails with ErrDecrypt when the key
// is wrong or the value was altered, or when the value is bound (made by
// SealBound: only OpenBound opens it).
func (b *Box) Open(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < Overhead {
		return nil, fmt.Errorf("secret: sealed value is %d bytes, shorter than the %d-byte minimum: %w", len(ciphertext), Overhead, ErrDecrypt)
	}
	if ciphertext[0] != version1 {
		return nil, fmt.Errorf("secret: unknown sealed-value version %d: %w", ciphertext[0], ErrDecrypt)
	}
	pt, err := b.aead.Open(nil, ciphertext[1:1+nonceSize], ciphertext[1+nonceSize:], ciphertext[:1])
	if err != nil {
		return nil, fmt.Errorf("secret: %w", ErrDecrypt)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}
