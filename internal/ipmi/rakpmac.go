package ipmi

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/bougou/go-ipmi/pkg/types"
)

// The RAKP handshake's six HMACs (IPMI v2.0 §13.28–13.32: RAKP 2's
// key-exchange code, SIK, K1, K2, RAKP 3's code, RAKP 4's integrity check
// value) computed without allocating: go-ipmi's crypto builds an hmac.New
// (two hash states, two pads) and a message buffer for each, about 40
// allocations per handshake — the largest share of a light check's
// garbage. Here HMAC (RFC 2104) is composed from the standard library's
// one-shot sums over stack buffers; TestAuthHMACMatchesCryptoHMAC and
// TestRAKPCodesMatchGoIPMI hold it equal to crypto/hmac and to go-ipmi.

// hmacBlock is the block size of MD5, SHA-1 and SHA-256.
const hmacBlock = 64

// authSize is the digest length of a RAKP authentication algorithm (0:
// none), or an error for an unknown one.
func authSize(alg types.AuthAlg) (int, error) {
	switch alg {
	case types.AuthAlg_None:
		return 0, nil
	case types.AuthAlg_HMAC_MD5:
		return md5.Size, nil
	case types.AuthAlg_HMAC_SHA1:
		return sha1.Size, nil
	case types.AuthAlg_HMAC_SHA256:
		return sha256.Size, nil
	}
	return 0, fmt.Errorf("unsupported auth algorithm: %d", alg)
}

// digest is alg's hash of b, in the first authSize bytes.
func digest(alg types.AuthAlg, b []byte) (d [sha256.Size]byte) {
	switch alg {
	case types.AuthAlg_HMAC_MD5:
		s := md5.Sum(b)
		copy(d[:], s[:])
	case types.AuthAlg_HMAC_SHA1:
		s := sha1.Sum(b)
		copy(d[:], s[:])
	case types.AuthAlg_HMAC_SHA256:
		d = sha256.Sum256(b)
	}
	return d
}

// authHMAC is HMAC-alg(key, msg) in out, returned as out's first
// authSize bytes (nil for AuthAlg_None, as go-ipmi's crypto.AuthHMAC).
func authHMAC(alg types.AuthAlg, key, msg []byte, out *[sha256.Size]byte) ([]byte, error) {
	n, err := authSize(alg)
	if err != nil || n == 0 {
		return nil, err
	}
	var k [hmacBlock]byte
	if len(key) > hmacBlock {
		d := digest(alg, key)
		copy(k[:], d[:n])
	} else {
		copy(k[:], key)
	}
	var ib [hmacBlock + 128]byte // RAKP messages are 36 to 74 bytes
	in := ib[:hmacBlock]
	for i, c := range k {
		in[i] = c ^ 0x36
	}
	in = append(in, msg...)
	inner := digest(alg, in)
	var ob [hmacBlock + sha256.Size]byte
	for i, c := range k {
		ob[i] = c ^ 0x5c
	}
	copy(ob[hmacBlock:], inner[:n])
	*out = digest(alg, ob[:hmacBlock+n])
	return out[:n], nil
}

// rakp2Input is what RAKP 2's key-exchange code covers, in b's storage:
// consoleID | bmcID | consoleRand | bmcRand | bmcGUID | role | ULen | user.
func rakp2Input(b []byte, consoleID, bmcID uint32, consoleRand, bmcRand, bmcGUID []byte, role byte, user string) []byte {
	b = binary.LittleEndian.AppendUint32(b[:0], consoleID)
	b = binary.LittleEndian.AppendUint32(b, bmcID)
	b = append(b, consoleRand[:16]...)
	b = append(b, bmcRand[:16]...)
	b = append(b, bmcGUID[:16]...)
	b = append(b, role, byte(len(user)))
	return append(b, user...)
}

// rakp3Input is what RAKP 3's code covers, in b's storage:
// bmcRand | consoleID | role | ULen | user.
func rakp3Input(b []byte, bmcRand []byte, consoleID uint32, role byte, user string) []byte {
	b = append(b[:0], bmcRand[:16]...)
	b = binary.LittleEndian.AppendUint32(b, consoleID)
	b = append(b, role, byte(len(user)))
	return append(b, user...)
}

// sikInput is what SIK covers: consoleRand | bmcRand | role | ULen | user.
func sikInput(b []byte, consoleRand, bmcRand []byte, role byte, user string) []byte {
	b = append(b[:0], consoleRand[:16]...)
	b = append(b, bmcRand[:16]...)
	b = append(b, role, byte(len(user)))
	return append(b, user...)
}

// rakp4Input is what RAKP 4's check value covers: consoleRand | bmcID | bmcGUID.
func rakp4Input(b []byte, consoleRand []byte, bmcID uint32, bmcGUID []byte) []byte {
	b = append(b[:0], consoleRand[:16]...)
	b = binary.LittleEndian.AppendUint32(b, bmcID)
	return append(b, bmcGUID[:16]...)
}

// rakp4ICVLen is how much of the SIK-keyed HMAC RAKP 4 carries.
func rakp4ICVLen(alg types.AuthAlg) int {
	switch alg {
	case types.AuthAlg_HMAC_SHA1:
		return 12
	case types.AuthAlg_HMAC_MD5, types.AuthAlg_HMAC_SHA256:
		return 16
	}
	return 0
}

var (
	constK1 = [20]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	constK2 = [20]byte{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}
)
