package manager

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/lightsout/lightsout/internal/store"
)

// API token rules: how a token is made, stored (its hash only) and
// matched. The API and the console match bearer tokens with HashToken; the
// CLI and the server's first admin token use CreateToken.

// TokenPrefix starts every API token, so a leaked one is easy to grep for.
const TokenPrefix = "lso_"

// NewToken returns a fresh random token and the hash the store keeps.
func NewToken() (string, []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	t := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return t, HashToken(t)
}

// HashToken is the stored form of a token.
func HashToken(t string) []byte {
	h := sha256.Sum256([]byte(strings.TrimSpace(t)))
	return h[:]
}

// CreateToken stores a new token and writes its secret to file (created
// 0600, never overwritten); with file empty the secret is returned only.
func CreateToken(ctx context.Context, st store.Store, name string, role store.Role, file string) (string, error) {
	secretTok, hash := NewToken()
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		if _, err := f.WriteString(secretTok + "\n"); err != nil {
			f.Close()
			return "", err
		}
		if err := f.Close(); err != nil {
			return "", err
		}
	}
	if err := st.AddToken(ctx, &store.Token{Name: name, Role: role, Hash: hash}); err != nil {
		if file != "" {
			os.Remove(file)
		}
		return "", err
	}
	return secretTok, nil
}
