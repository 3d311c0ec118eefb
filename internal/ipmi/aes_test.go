package ipmi

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bougou/go-ipmi/pkg/crypto"
)

func TestAESMatchesGoIPMI(t *testing.T) {
	k2 := bytes.Repeat([]byte{0x5a}, 20)
	s := &Session{k2: k2}
	for n := 0; n <= 40; n++ {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		ours, err := s.encrypt(plain)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := crypto.DecryptAESPayload(ours, k2)
		if err != nil || !bytes.Equal(theirs, plain) {
			t.Fatalf("len %d: go-ipmi decrypts ours to %x, %v", n, theirs, err)
		}
		enc, _ := crypto.EncryptAESPayload(plain, k2, bytes.Repeat([]byte{7}, 16))
		back, err := s.decrypt(enc)
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("len %d: we decrypt go-ipmi's to %x, %v", n, back, err)
		}
	}
	// Tampered or truncated ciphertexts are errors, never panics.
	good, _ := s.encrypt([]byte("hello"))
	for _, bad := range [][]byte{nil, good[:16], good[:31], append(good, 1)} {
		if _, err := s.decrypt(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("decrypt(%d bytes) = %v", len(bad), err)
		}
	}
	// CBC: flipping a bit of the block before the last flips the same bit
	// of the last plaintext block. Bit 7 of the pad-length byte makes it
	// ≥ 128, more than a block can pad: always refused. (Flipping the last
	// block itself garbles it at random and passes the pad check about
	// once in 256.)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-17] ^= 0x80
	if _, err := s.decrypt(flipped); err == nil {
		t.Error("corrupted pad length accepted")
	}
}
