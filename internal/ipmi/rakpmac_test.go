package ipmi

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"math/rand/v2"
	"testing"

	"github.com/bougou/go-ipmi/pkg/crypto"
	"github.com/bougou/go-ipmi/pkg/types"
)

var authAlgs = []types.AuthAlg{types.AuthAlg_None, types.AuthAlg_HMAC_MD5, types.AuthAlg_HMAC_SHA1, types.AuthAlg_HMAC_SHA256}

// TestAuthHMACMatchesCryptoHMAC: authHMAC equals crypto/hmac for every
// RAKP algorithm, keys shorter than, equal to and longer than a block,
// and messages longer than its stack buffer.
func TestAuthHMACMatchesCryptoHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	news := map[types.AuthAlg]func() hash.Hash{types.AuthAlg_HMAC_MD5: md5.New, types.AuthAlg_HMAC_SHA1: sha1.New, types.AuthAlg_HMAC_SHA256: sha256.New}
	for alg, h := range news {
		for _, kl := range []int{0, 1, 16, 20, 32, 63, 64, 65, 200} {
			for _, ml := range []int{0, 20, 36, 74, 128, 129, 500} {
				key, msg := make([]byte, kl), make([]byte, ml)
				for i := range key {
					key[i] = byte(rng.Uint32())
				}
				for i := range msg {
					msg[i] = byte(rng.Uint32())
				}
				m := hmac.New(h, key)
				m.Write(msg)
				var out [sha256.Size]byte
				got, err := authHMAC(alg, key, msg, &out)
				if err != nil || !bytes.Equal(got, m.Sum(nil)) {
					t.Fatalf("alg %d key %d msg %d: %x %v, crypto/hmac %x", alg, kl, ml, got, err, m.Sum(nil))
				}
			}
		}
	}
	var out [sha256.Size]byte
	if got, err := authHMAC(types.AuthAlg_None, []byte("k"), []byte("m"), &out); got != nil || err != nil {
		t.Fatalf("none: %x %v", got, err)
	}
	if _, err := authHMAC(types.AuthAlg(9), nil, nil, &out); err == nil {
		t.Fatal("an unknown algorithm was accepted")
	}
}

// TestRAKPCodesMatchGoIPMI: the handshake's six codes as the session
// computes them equal go-ipmi's crypto (the BMC side of go-ipmi's server
// uses it), for every algorithm and user names of 0 to 16 bytes.
func TestRAKPCodesMatchGoIPMI(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	for _, alg := range authAlgs {
		for ul := range 17 {
			var cr, br, g [16]byte
			fill(cr[:])
			fill(br[:])
			fill(g[:])
			userB := make([]byte, ul)
			for i := range userB {
				userB[i] = 'a' + byte(rng.IntN(26))
			}
			user := string(userB)
			kuid := crypto.PadPassword20([]byte("secret"))
			cid, bid, role := rng.Uint32(), rng.Uint32(), byte(rng.IntN(5))|0x10
			var in [128]byte
			var o [sha256.Size]byte

			want2, _ := crypto.RAKP2AuthCode(alg, cid, bid, cr[:], br[:], g[:], role, user, kuid)
			got2, _ := authHMAC(alg, kuid, rakp2Input(in[:], cid, bid, cr[:], br[:], g[:], role, user), &o)
			if !bytes.Equal(got2, want2) {
				t.Fatalf("alg %d user %q: RAKP 2 code %x, go-ipmi %x", alg, user, got2, want2)
			}
			sik, k1, k2, _ := crypto.DeriveSessionKeys(alg, cr[:], br[:], role, user, kuid)
			var sb, b1, b2 [sha256.Size]byte
			gsik, _ := authHMAC(alg, kuid, sikInput(in[:], cr[:], br[:], role, user), &sb)
			g1, _ := authHMAC(alg, gsik, constK1[:], &b1)
			g2, _ := authHMAC(alg, gsik, constK2[:], &b2)
			if !bytes.Equal(gsik, sik) || !bytes.Equal(g1, k1) || !bytes.Equal(g2, k2) {
				t.Fatalf("alg %d: SIK/K1/K2 %x %x %x, go-ipmi %x %x %x", alg, gsik, g1, g2, sik, k1, k2)
			}
			want3, _ := crypto.RAKP3AuthCode(alg, br[:], cid, role, user, kuid)
			got3, _ := authHMAC(alg, kuid, rakp3Input(in[:], br[:], cid, role, user), &o)
			if !bytes.Equal(got3, want3) {
				t.Fatalf("alg %d: RAKP 3 code %x, go-ipmi %x", alg, got3, want3)
			}
			want4, _ := crypto.RAKP4ICV(alg, cr[:], bid, g[:], sik)
			got4, _ := authHMAC(alg, gsik, rakp4Input(in[:], cr[:], bid, g[:]), &o)
			if got4 = got4[:rakp4ICVLen(alg)]; !bytes.Equal(got4, want4) {
				t.Fatalf("alg %d: RAKP 4 ICV %x, go-ipmi %x", alg, got4, want4)
			}
		}
	}
}

// TestAuthHMACAllocatesNothing: the handshake's HMACs make no garbage.
func TestAuthHMACAllocatesNothing(t *testing.T) {
	kuid := crypto.PadPassword20([]byte("secret"))
	var cr, br, g [16]byte
	if n := testing.AllocsPerRun(100, func() {
		var in [128]byte
		var o [sha256.Size]byte
		for _, alg := range authAlgs {
			authHMAC(alg, kuid, rakp2Input(in[:], 1, 2, cr[:], br[:], g[:], 0x14, "admin"), &o)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per 4 HMACs, want 0", n)
	}
}

// BenchmarkRAKPCodes: the handshake's six HMACs (SHA-256), through
// go-ipmi's crypto as before and on the stack as now.
func BenchmarkRAKPCodes(b *testing.B) {
	kuid := crypto.PadPassword20([]byte("secret"))
	var cr, br, g [16]byte
	alg := types.AuthAlg_HMAC_SHA256
	b.Run("goipmi", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			crypto.RAKP2AuthCode(alg, 1, 2, cr[:], br[:], g[:], 0x14, "admin", kuid)
			sik, _, _, _ := crypto.DeriveSessionKeys(alg, cr[:], br[:], 0x14, "admin", kuid)
			crypto.RAKP3AuthCode(alg, br[:], 1, 0x14, "admin", kuid)
			crypto.RAKP4ICV(alg, cr[:], 2, g[:], sik)
		}
	})
	b.Run("stack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in [128]byte
			var o, sb, k1, k2 [sha256.Size]byte
			authHMAC(alg, kuid, rakp2Input(in[:], 1, 2, cr[:], br[:], g[:], 0x14, "admin"), &o)
			sik, _ := authHMAC(alg, kuid, sikInput(in[:], cr[:], br[:], 0x14, "admin"), &sb)
			authHMAC(alg, sik, constK1[:], &k1)
			authHMAC(alg, sik, constK2[:], &k2)
			authHMAC(alg, kuid, rakp3Input(in[:], br[:], 1, 0x14, "admin"), &o)
			authHMAC(alg, sik, rakp4Input(in[:], cr[:], 2, g[:]), &o)
		}
	})
}
