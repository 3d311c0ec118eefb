package ipmi

import (
	"github.com/bougou/go-ipmi/pkg/types"
)

// suiteAlgs are the algorithms a suite names.
type suiteAlgs struct {
	auth  types.AuthAlg
	integ types.IntegrityAlg
	conf  types.CryptAlg
}

// suites are the suites this engine implements. 0 is here so that it can be
// used when explicitly allowed (and audited); it is never chosen otherwise.
var suites = map[CipherSuite]suiteAlgs{
	0:  {types.AuthAlg_None, types.IntegrityAlg_None, types.CryptAlg_None},
	1:  {types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_None, types.CryptAlg_None},
	2:  {types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_HMAC_SHA1_96, types.CryptAlg_None},
	3:  {types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_HMAC_SHA1_96, types.CryptAlg_AES_CBC_128},
	6:  {types.AuthAlg_HMAC_MD5, types.IntegrityAlg_None, types.CryptAlg_None},
	7:  {types.AuthAlg_HMAC_MD5, types.IntegrityAlg_HMAC_MD5_128, types.CryptAlg_None},
	8:  {types.AuthAlg_HMAC_MD5, types.IntegrityAlg_HMAC_MD5_128, types.CryptAlg_AES_CBC_128},
	15: {types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_None, types.CryptAlg_None},
	16: {types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_HMAC_SHA256_128, types.CryptAlg_None},
	17: {types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_HMAC_SHA256_128, types.CryptAlg_AES_CBC_128},
}
