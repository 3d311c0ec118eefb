package ipmi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
)

// IPMI 2.0 §13.29 confidentiality (AES-CBC-128 with K2's first 16 bytes):
//
//	IV(16) || AES-CBC( plain || pad 1,2,3,… || pad length )
//
// The cipher block is built once per session; go-ipmi's helpers build it
// per packet, which at fleet scale is a large share of the CPU.

func (s *Session) block() (cipher.Block, error) {
	if s.blk == nil {
		b, err := aes.NewCipher(s.k2[:16])
		if err != nil {
			return nil, err
		}
		s.blk = b
	}
	return s.blk, nil
}

// encrypt returns IV || ciphertext of the padded plain text.
func (s *Session) encrypt(plain []byte) ([]byte, error) {
	blk, err := s.block()
	if err != nil {
		return nil, err
	}
	pad := (16 - (len(plain)+1)%16) % 16
	out := make([]byte, 16+len(plain)+pad+1)
	if _, err := rand.Read(out[:16]); err != nil {
		return nil, err
	}
	body := out[16:]
	copy(body, plain)
	for i := 0; i < pad; i++ {
		body[len(plain)+i] = byte(i + 1)
	}
	body[len(body)-1] = byte(pad)
	cbcEncrypt(blk, out[:16], body)
	return out, nil
}

// decrypt checks and strips the IV, decrypts and removes the pad. It never
// panics: lengths are checked before any block operation.
func (s *Session) decrypt(ct []byte) ([]byte, error) {
	if len(ct) < 32 || len(ct)%16 != 0 {
		return nil, malformed("encrypted payload of %d bytes", len(ct))
	}
	blk, err := s.block()
	if err != nil {
		return nil, err
	}
	body := make([]byte, len(ct)-16)
	cbcDecrypt(blk, ct[:16], ct[16:], body)
	pad := int(body[len(body)-1])
	if pad > 15 || pad+1 > len(body) {
		return nil, malformed("confidentiality pad length %d", pad)
	}
	for i := 0; i < pad; i++ {
		if body[len(body)-1-pad+i] != byte(i+1) {
			return nil, malformed("confidentiality pad byte %d", i)
		}
	}
	return body[:len(body)-1-pad], nil
}

// cbcEncrypt encrypts buf (a multiple of 16 bytes) in place in CBC mode.
// Hand-rolled over the session's block so no per-packet mode object is
// allocated.
func cbcEncrypt(blk cipher.Block, iv, buf []byte) {
	prev := iv
	for i := 0; i < len(buf); i += 16 {
		b := buf[i : i+16]
		subtle.XORBytes(b, b, prev)
		blk.Encrypt(b, b)
		prev = b
	}
}

// cbcDecrypt decrypts src (a multiple of 16 bytes) into dst in CBC mode.
func cbcDecrypt(blk cipher.Block, iv, src, dst []byte) {
	prev := iv
	for i := 0; i < len(src); i += 16 {
		blk.Decrypt(dst[i:i+16], src[i:i+16])
		subtle.XORBytes(dst[i:i+16], dst[i:i+16], prev)
		prev = src[i : i+16]
	}
}
