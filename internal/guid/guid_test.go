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
