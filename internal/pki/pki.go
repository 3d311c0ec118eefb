// Package pki is the manager's certificate authority for the agent
// channel: an ECDSA P-256 CA created on first start in the data directory
// (key 0600), client certificates issued from agents' CSRs, and the server
// certificate of the agent listener. Fingerprints are SHA-256 of the DER
// certificate, lower-case hex: a join token carries the CA's, so an agent
// pins the manager before it has any certificate.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names in the data directory.
const (
	CACertFile = "agent-ca.pem"
	CAKeyFile  = "agent-ca.key"
)

// Validity of what the CA issues.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ClientValidity = 365 * 24 * time.Hour
	ServerValidity = 90 * 24 * time.Hour
)

// CA is the manager's certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// Fingerprint is Fingerprint(Cert).
	Fingerprint string
}

// Fingerprint is the SHA-256 of a certificate's DER, lower-case hex.
func Fingerprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:])
}

// LoadOrCreateCA reads the CA from dir, creating it (key 0600) when
// neither file exists. One file without the other is an error: nothing is
// overwritten.
func LoadOrCreateCA(dir string) (*CA, error) {
	cf, kf := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	cb, cerr := os.ReadFile(cf)
	kb, kerr := os.ReadFile(kf)
	switch {
	case cerr == nil && kerr == nil:
		return parseCA(cb, kb)
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return nil, fmt.Errorf("agent CA: %w", cerr)
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return nil, fmt.Errorf("agent CA: %w", kerr)
	default:
		return nil, fmt.Errorf("agent CA: only one of %s and %s exists: restore the other or remove both (every agent must then enroll again)", cf, kf)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "lightsout agent CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	if err := WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(kf)
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	return parseCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func parseCA(cb, kb []byte) (*CA, error) {
	c, err := ParseCertPEM(cb)
	if err != nil {
		return nil, fmt.Errorf("agent CA certificate: %w", err)
	}
	k, err := ParseKeyPEM(kb)
	if err != nil {
		return nil, fmt.Errorf("agent CA key: %w", err)
	}
	if !k.PublicKey.Equal(c.PublicKey) {
		return nil, errors.New("agent CA: the key does not match the certificate")
	}
	return &CA{Cert: c, Key: k, Fingerprint: Fingerprint(c)}, nil
}

// WriteFile creates path exclusively with mode perm (never overwrites).
func WriteFile(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// ParseCertPEM parses the first CERTIFICATE block.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// ParseKeyPEM parses an EC PRIVATE KEY block.
func ParseKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "EC PRIVATE KEY" {
		return nil, errors.New("no PEM EC PRIVATE KEY block")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

// KeyPEM encodes a key.
func KeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// CertPEM encodes a certificate.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

// NewCSR makes a key and a CSR for commonName.
func NewCSR(commonName string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: commonName}}, key)
	return key, der, err
}

// SignClient issues a client certificate for a CSR (DER), its subject
// replaced by commonName: the manager names its agents, not the CSR.
func (ca *CA) SignClient(csrDER []byte, commonName string, now time.Time) (*x509.Certificate, error) {
	return ca.SignClientFor(csrDER, commonName, now, ClientValidity)
}

// SignClientFor is SignClient with the certificate's lifetime.
func (ca *CA) SignClientFor(csrDER []byte, commonName string, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, errors.New("CSR: the key must be ECDSA")
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// ServerCert issues a fresh server certificate for the agent listener
// (a new key at every start; the chain includes the CA so that an agent
// holding only the CA fingerprint can verify it).
func (ca *CA) ServerCert(hosts []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "lightsout manager"},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(ServerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"lightsout-manager"},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// Pool is a pool of the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}
