package guid

import (
	"errors"
	"strings"
	"testing"
)

func TestMatchesEveryLayout(t *testing.T) {
	raw := GUID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10}
	spellings := []string{
		raw.RFC4122(), raw.SMBIOS(), raw.IPMI(),
		strings.ReplaceAll(raw.SMBIOS(), "-", ""),
		"{" + strings.ToUpper(raw.IPMI()) + "}",
		raw.Hex(),
	}
	for _, s := range spellings {
		p, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if !raw.Matches(p) {
			t.Errorf("%q does not match raw %s", s, raw.Hex())
		}
	}
	if raw.SMBIOS() != "04030201-0605-0807-090a-0b0c0d0e0f10" {
		t.Errorf("SMBIOS rendering = %s", raw.SMBIOS())
	}
	if raw.IPMI() != "100f0e0d-0c0b-0a09-0807-060504030201" {
		t.Errorf("IPMI rendering = %s", raw.IPMI())
	}
	other := raw
	other[15] ^= 0xff
	p, _ := Parse(other.RFC4122())
	if raw.Matches(p) {
		t.Error("a different GUID matched")
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "xyz", "01020304-0506-0708-090a0b0c0d0e0f10", "0102030405060708090a0b0c0d0e0f1", "0102030405060708090a0b0c0d0e0fzz", "01020304-05060-708-090a-0b0c0d0e0f10"} {
		if _, err := Parse(s); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) err = %v, want ErrSyntax", s, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("04030201-0605-0807-090a-0b0c0d0e0f10")
	f.Add("{0102030405060708090a0b0c0d0e0f10}")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(g.RFC4122())
		if err != nil || back != g {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
	})
}

func TestLayoutDetection(t *testing.T) {
	// A version-4 UUID stored as the IPMI specification says (reversed).
	u, _ := Parse("7d444840-9dc0-4b46-a06f-9f26a8d1b0e4")
	ipmiStored := FromIPMI(u)
	if ipmiStored.Layout() != LayoutIPMI || ipmiStored.String() != "7d444840-9dc0-4b46-a06f-9f26a8d1b0e4" {
		t.Errorf("IPMI-stored: %s %s", ipmiStored.Layout(), ipmiStored)
	}
	// OpenIPMI's ipmi_sim example GUID: ipmitool shows it in IPMI encoding.
	sim, _ := Parse("a123456789abcdefa123456789abcdef")
	if sim.String() != "efcdab89-6745-23a1-efcd-ab89674523a1" {
		t.Errorf("ipmi_sim GUID rendered %s", sim)
	}
	// Stored SMBIOS-style (the IPMI reading has no valid version).
	smb := FromSMBIOS(u)
	if l := smb.Layout(); l != LayoutSMBIOS && reverse(smb)[6]>>4 == 0 {
		t.Errorf("SMBIOS-stored detected as %s", l)
	}
	if !smb.Matches(u) || !ipmiStored.Matches(u) {
		t.Error("matching must not depend on detection")
	}
}

// Every spelling of one GUID matches in the layout it was written in, and
// the raw GUID rendered in that layout reads exactly as spelled.
func TestMatchLayoutPrintsAsSpelled(t *testing.T) {
	// The first field of a pyghmi-style GUID: random bytes in RFC 4122
	// order, whose detected layout is not RFC 4122.
	raws := []GUID{
		{0x7d, 0x44, 0x48, 0x40, 0x9d, 0xc0, 0x4b, 0x46, 0xa0, 0x6f, 0x9f, 0x26, 0xa8, 0xd1, 0xb0, 0xe4},
		{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10},
		FromIPMI(GUID{0x7d, 0x44, 0x48, 0x40, 0x9d, 0xc0, 0x4b, 0x46, 0xa0, 0x6f, 0x9f, 0x26, 0xa8, 0xd1, 0xb0, 0xe4}),
	}
	for _, raw := range raws {
		for _, l := range layouts {
			spelled, err := Parse(strings.ToUpper(raw.In(l)))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := raw.MatchLayout(spelled)
			if !ok || raw.In(got) != spelled.Spelling() {
				t.Errorf("raw %s spelled in %s: matched %v in %q, renders %s, registered %s", raw.Hex(), l, ok, got, raw.In(got), spelled.Spelling())
			}
		}
		other := raw
		other[3] ^= 1
		if _, ok := raw.MatchLayout(other); ok {
			t.Errorf("raw %s matched another GUID", raw.Hex())
		}
	}
	// A symmetric GUID fits several layouts: the detected one wins.
	sym, _ := Parse("00000000-0000-4000-8000-000000000000")
	if l, ok := sym.MatchLayout(sym); !ok || l != sym.Layout() {
		t.Errorf("symmetric: %s %v, detected %s", l, ok, sym.Layout())
	}
}

// Two spellings of one GUID in different layouts are the same GUID — the
// case the old pairwise check (a.Matches(b) || b.Matches(a)) missed: one
// copied from dmidecode (SMBIOS), one from an IPMI-layout tool.
func TestSameAcrossLayouts(t *testing.T) {
	raw := GUID{0x7d, 0x44, 0x48, 0x40, 0x9d, 0xc0, 0x4b, 0x46, 0xa0, 0x6f, 0x9f, 0x26, 0xa8, 0xd1, 0xb0, 0xe4}
	for _, a := range layouts {
		for _, b := range layouts {
			sa, _ := Parse(raw.In(a))
			sb, _ := Parse(raw.In(b))
			if !Same(sa, sb) {
				t.Errorf("%s spelling and %s spelling of one GUID are not Same", a, b)
			}
		}
	}
	smb, _ := Parse(raw.SMBIOS())
	ipm, _ := Parse(raw.IPMI())
	if smb.Matches(ipm) || ipm.Matches(smb) {
		t.Fatal("premise: the pairwise check was to miss SMBIOS vs IPMI spellings")
	}
	other := raw
	other[0] ^= 0x80
	so, _ := Parse(other.RFC4122())
	if Same(so, smb) {
		t.Error("a different GUID is Same")
	}
}
