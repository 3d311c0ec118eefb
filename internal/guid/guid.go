// Package guid handles System GUIDs as BMCs return them and as operators
// write them down.
//
// A BMC returns 16 raw bytes (IPMI Get System GUID, Redfish UUID). Tools
// render those bytes in three layouts:
//
//   - RFC 4122: the bytes in wire order (ipmitool "rfc4122").
//   - SMBIOS: the first three fields byte-swapped, as dmidecode and the host
//     OS show the system UUID (ipmitool "smbios").
//   - IPMI: all 16 bytes reversed, the IPMI 2.0 table 20-10 reading
//     (ipmitool "ipmi", FreeIPMI).
//
// An expected GUID written in any of the layouts, with or without dashes or
// braces, matches the same raw bytes; see [GUID.Matches].
package guid

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// GUID is the 16 raw bytes in the order the BMC sent them.
type GUID [16]byte

// Zero reports whether g is all zero bytes (no GUID known).
func (g GUID) Zero() bool { return g == GUID{} }

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("not a GUID")

// Parse reads 32 hex digits, optionally in 8-4-4-4-12 groups with dashes,
// optionally in braces, and returns them in the order written. The result is
// a spelling, not yet a layout: compare it with [GUID.Matches].
func Parse(s string) (GUID, error) {
	var g GUID
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(t, "{")
	t = strings.TrimSuffix(t, "}")
	if strings.Contains(t, "-") {
		parts := strings.Split(t, "-")
		if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
			return g, fmt.Errorf("%w: %q: dashes must split it 8-4-4-4-12", ErrSyntax, s)
		}
		t = strings.Join(parts, "")
	}
	if len(t) != 32 {
		return g, fmt.Errorf("%w: %q: want 32 hex digits, have %d characters", ErrSyntax, s, len(t))
	}
	if _, err := hex.Decode(g[:], []byte(t)); err != nil {
		return g, fmt.Errorf("%w: %q: %v", ErrSyntax, s, err)
	}
	return g, nil
}

// FromRFC4122 is the raw GUID whose RFC 4122 rendering is spelled.
func FromRFC4122(spelled GUID) GUID { return spelled }

// FromSMBIOS is the raw GUID whose SMBIOS rendering is spelled.
func FromSMBIOS(spelled GUID) GUID { return smbiosSwap(spelled) }

// FromIPMI is the raw GUID whose IPMI (fully reversed) rendering is spelled.
func FromIPMI(spelled GUID) GUID { return reverse(spelled) }

func smbiosSwap(g GUID) GUID {
	o := g
	o[0], o[1], o[2], o[3] = g[3], g[2], g[1], g[0]
	o[4], o[5] = g[5], g[4]
	o[6], o[7] = g[7], g[6]
	return o
}

func reverse(g GUID) GUID {
	var o GUID
	for i := range g {
		o[i] = g[15-i]
	}
	return o
}

func format(g GUID) string {
	var b [36]byte // one allocation: the string
	hex.Encode(b[0:8], g[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], g[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], g[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], g[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], g[10:16])
	return string(b[:])
}

// RFC4122 renders the raw bytes in wire order.
func (g GUID) RFC4122() string { return format(g) }

// SMBIOS renders with the first three fields byte-swapped (dmidecode's view).
func (g GUID) SMBIOS() string { return format(smbiosSwap(g)) }

// IPMI renders all 16 bytes reversed (IPMI 2.0 table 20-10).
func (g GUID) IPMI() string { return format(reverse(g)) }

// Hex is the raw bytes as 32 hex digits, wire order, no dashes.
func (g GUID) Hex() string { return hex.EncodeToString(g[:]) }

// Layout names a byte order in which raw GUID bytes can be read.
type Layout string

const (
	LayoutIPMI    Layout = "ipmi"
	LayoutSMBIOS  Layout = "smbios"
	LayoutRFC4122 Layout = "rfc4122"
)

// Layout guesses the byte order the BMC used, as ipmitool does: the first
// of IPMI (what the specification prescribes), SMBIOS and RFC 4122 whose
// rendering carries a defined UUID version (1–5). With none, SMBIOS.
func (g GUID) Layout() Layout {
	for _, c := range []struct {
		l Layout
		r GUID
	}{{LayoutIPMI, reverse(g)}, {LayoutSMBIOS, smbiosSwap(g)}, {LayoutRFC4122, g}} {
		if v := c.r[6] >> 4; v >= 1 && v <= 5 {
			return c.l
		}
	}
	return LayoutSMBIOS
}

// In renders g in layout l.
func (g GUID) In(l Layout) string {
	switch l {
	case LayoutIPMI:
		return g.IPMI()
	case LayoutRFC4122:
		return g.RFC4122()
	}
	return g.SMBIOS()
}

// String renders g in its detected Layout: the GUID as the vendor meant it
// (and as ipmitool prints it).
func (g GUID) String() string { return g.In(g.Layout()) }

// Matches reports whether spelled (as returned by [Parse]) names the raw
// GUID g in any of the three layouts.
func (g GUID) Matches(spelled GUID) bool {
	_, ok := g.MatchLayout(spelled)
	return ok
}

// layouts are the three readings, in the order [GUID.Layout] tries them.
var layouts = [...]Layout{LayoutIPMI, LayoutSMBIOS, LayoutRFC4122}

// MatchLayout reports the layout in which spelled names the raw GUID g —
// the layout the operator wrote it in — and whether there is one. Where
// several fit (a GUID symmetric under a swap), g's detected layout wins, so
// the choice is the same wherever it is made.
func (g GUID) MatchLayout(spelled GUID) (Layout, bool) {
	if d := g.Layout(); g.in(d) == spelled {
		return d, true
	}
	for _, l := range layouts {
		if g.in(l) == spelled {
			return l, true
		}
	}
	return "", false
}

// Same reports whether two spellings (as returned by [Parse], each in any
// layout) can name one raw GUID: the comparison for two GUIDs an operator
// or a tool wrote down, such as a new registration against a stored one.
func Same(a, b GUID) bool {
	rb := b.Raws()
	for _, ra := range a.Raws() {
		if slices.Contains(rb[:], ra) {
			return true
		}
	}
	return false
}

// Raws is every raw GUID the spelling could name, one per layout: two
// spellings are [Same] exactly when their Raws share one, so an index keyed
// by Raws finds duplicates in one pass.
func (g GUID) Raws() [3]GUID {
	return [3]GUID{from(layouts[0], g), from(layouts[1], g), from(layouts[2], g)}
}

// from is the raw GUID whose rendering in layout l is spelled.
func from(l Layout, spelled GUID) GUID {
	switch l {
	case LayoutIPMI:
		return FromIPMI(spelled)
	case LayoutSMBIOS:
		return FromSMBIOS(spelled)
	}
	return FromRFC4122(spelled)
}

// in is g's bytes as rendered in layout l (the inverse of from).
func (g GUID) in(l Layout) GUID {
	switch l {
	case LayoutIPMI:
		return reverse(g)
	case LayoutSMBIOS:
		return smbiosSwap(g)
	}
	return g
}

// Spelling is the text of a spelled GUID in the canonical form the store
// keeps (lower case, dashed 8-4-4-4-12): what the operator registered.
func (g GUID) Spelling() string { return format(g) }

// Renderings is the GUID in every layout, for evidence and JSON output.
type Renderings struct {
	Raw     string `json:"raw"`
	Layout  Layout `json:"detected_layout"`
	RFC4122 string `json:"rfc4122"`
	SMBIOS  string `json:"smbios"`
	IPMI    string `json:"ipmi"`
}

// Renderings returns g in every layout.
func (g GUID) Renderings() Renderings {
	return Renderings{Raw: g.Hex(), Layout: g.Layout(), RFC4122: g.RFC4122(), SMBIOS: g.SMBIOS(), IPMI: g.IPMI()}
}
