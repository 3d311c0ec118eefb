package ipmi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bougou/go-ipmi/pkg/types"
)

func TestNegotiable(t *testing.T) {
	open := func(st byte) error {
		return &StageError{Stage: StageOpenSession, Status: st, Err: statusErr(st)}
	}
	cases := []struct {
		err  error
		want bool
	}{
		{open(0x11), true},  // no cipher suite match
		{open(0x04), true},  // invalid authentication algorithm (go-ipmi)
		{open(0x01), true},  // LAN Auth #28: 0x01 for a suite it does not do
		{open(0x0a), true},  // LAN Auth #19/#20
		{open(0x12), true},  // LAN Auth #19/#20
		{open(0x0b), false}, // no slot at the requested role: not about the suite
		{open(0x09), false}, // invalid role
		{&StageError{Stage: StageOpenSession, Err: fmt.Errorf("%w: x", ErrMalformed)}, true},
		{&StageError{Stage: StageOpenSession, Err: ErrNoResponse}, false}, // silence is silence
		{&StageError{Stage: StageRAKP1, Status: 0x01, Err: ErrNoSessionSlot}, false},
		{&StageError{Stage: StageRAKP1, Err: ErrWrongPassword}, false},
		{&StageError{Stage: StageRAKP3, Err: ErrNoCipherSuite}, true},
		{errors.New("plain"), false},
	}
	for _, c := range cases {
		if got := negotiable(c.err); got != c.want {
			t.Errorf("negotiable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestCounterSuite(t *testing.T) {
	a3 := suites[3]
	a17 := suites[17]
	cases := []struct {
		allow   []CipherSuite
		algs    suiteAlgs
		cipher0 bool
		want    CipherSuite
		ok      bool
	}{
		{[]CipherSuite{17, 3}, a3, false, 3, true},   // pyghmi
		{[]CipherSuite{17}, a3, false, 0, false},     // 3 not allowed
		{[]CipherSuite{3, 17}, a17, false, 17, true}, // the other way round
		{[]CipherSuite{17, 3}, suites[0], false, 0, false},
		{[]CipherSuite{0}, suites[0], false, 0, false}, // suite 0 only when explicitly allowed
		{[]CipherSuite{0}, suites[0], true, 0, true},
		{[]CipherSuite{17, 3}, suiteAlgs{types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_HMAC_SHA1_96, types.CryptAlg_None}, false, 0, false}, // suite 2: not allowed
	}
	for _, c := range cases {
		got, ok := counterSuite(c.allow, uint8(c.algs.auth), uint8(c.algs.integ), uint8(c.algs.conf), c.cipher0)
		if got != c.want || ok != c.ok {
			t.Errorf("counterSuite(%v, %v, cipher0 %v) = %v, %v; want %v, %v", c.allow, c.algs, c.cipher0, got, ok, c.want, c.ok)
		}
	}
}

func TestProfileJSONAndQuirkNames(t *testing.T) {
	all := QuirkNoPing | QuirkCounterProposal | QuirkStatus01 | QuirkNoSuiteList | QuirkNoSystemGUID | QuirkStaleSession
	if got := ParseQuirks(all.Names()); got != all {
		t.Errorf("quirk names round trip: %v → %v", all.Names(), got.Names())
	}
	// Every quirk bit has a name: vocab.TestEveryQuirkNamed.
	if got := ParseQuirks([]string{"from_a_newer_version", "no_presence_ping"}); got != QuirkNoPing {
		t.Errorf("unknown names are ignored: %v", got.Names())
	}
	for _, p := range []Profile{{}, {Suite: 17, Known: true}, {Suite: 3, Known: true, Quirks: QuirkNoPing | QuirkStaleSession}, {Quirks: QuirkNoPing}} {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back Profile
		if err := json.Unmarshal(b, &back); err != nil || back != p {
			t.Errorf("profile %+v → %s → %+v (%v)", p, b, back, err)
		}
	}
	var p Profile
	for _, bad := range []string{`{"suite": 4}`, `{"suite": 0}`, `{"suite": 300}`} {
		if err := json.Unmarshal([]byte(bad), &p); err != nil || p.Known {
			t.Errorf("%s: a suite the engine does not implement is not learned: %+v %v", bad, p, err)
		}
	}
	// Suite lists are JSON numbers, not base64 bytes.
	if b, _ := json.Marshal(Negotiation{Allowed: []CipherSuite{17, 3}, Offered: []CipherSuite{3}}); !strings.Contains(string(b), `"allowed":[17,3]`) || !strings.Contains(string(b), `"offered":[3]`) {
		t.Errorf("negotiation JSON: %s", b)
	}
}
