package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := LoadOrCreateCA(dir)
	if err != nil || again.Fingerprint != ca.Fingerprint || len(ca.Fingerprint) != 64 {
		t.Fatalf("reload: %v %s %s", err, again.Fingerprint, ca.Fingerprint)
	}
	key, csr, err := NewCSR("ignored")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.SignClient(csr, "web-1", time.Now())
	if err != nil || c.Subject.CommonName != "web-1" || !key.PublicKey.Equal(c.PublicKey) {
		t.Fatalf("sign: %v %+v", err, c)
	}
	if _, err := ca.SignClient(append(csr[:len(csr)-1:len(csr)-1], csr[len(csr)-1]^1), "x", time.Now()); err == nil {
		t.Fatal("a tampered CSR was signed")
	}
	sc, err := ca.ServerCert([]string{"127.0.0.1", "mgr.example"}, time.Now())
	if err != nil || len(sc.Certificate) != 2 {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, CACertFile))
	if _, err := LoadOrCreateCA(dir); err == nil || !strings.Contains(err.Error(), "only one") {
		t.Fatalf("half a CA: %v", err)
	}
}
