package hostlist

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"bmc-1", "bmc-1"},
		{"a,b,a", "a,b"},
		{"node[1-3]", "node1,node2,node3"},
		{"node[1-3,7]", "node1,node2,node3,node7"},
		{"bmc-[001-003],spare-1", "bmc-001,bmc-002,bmc-003,spare-1"},
		{"bmc-[08-11]", "bmc-08,bmc-09,bmc-10,bmc-11"},
		{"[1-2]-x", "1-x,2-x"},
		{"r[1-2]-b[01-02]", "r1-b01,r1-b02,r2-b01,r2-b02"},
		{"10.0.0.[1-3]", "10.0.0.1,10.0.0.2,10.0.0.3"},
		{"bmc-[9-11]", "bmc-9,bmc-10,bmc-11"},
		{"n[5]", "n5"},
		{"[fe80::1]", ""}, // not digits: an error below
	}
	for _, tc := range cases[:len(cases)-1] {
		got, err := Expand(tc.in, 0)
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("Expand(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestExpandRefused(t *testing.T) {
	cases := []struct {
		in   string
		pos  int
		want string
	}{
		{"bmc-[001-100", 5, "'[' without ']'"},
		{"bmc-001]", 8, "']' without '['"},
		{"bmc-[5-1]", 6, "runs backwards"},
		{"bmc-[1-x]", 8, `'x' in a range`},
		{"bmc-[a-3]", 6, `'a' in a range`},
		{"bmc-[1-]", 8, "a number on each side"},
		{"bmc-[]", 5, "empty range"},
		{"a,,b", 3, "empty name"},
		{"a,", 3, "empty name"},
		{"bmc-[1-[2]]", 8, "'[' inside a range"},
		{"a b", 2, "a space"},
		{"x,bmc-[1-3,5-z]", 14, `'z' in a range`},
	}
	for _, tc := range cases {
		_, err := Expand(tc.in, 0)
		var he *Error
		if !errors.As(err, &he) || he.Pos != tc.pos || !strings.Contains(he.Reason, tc.want) {
			t.Errorf("Expand(%q): %v; want position %d, %q", tc.in, err, tc.pos, tc.want)
		}
	}
}

func TestExpandBounded(t *testing.T) {
	if got, err := Expand("n[1-100]", 100); err != nil || len(got) != 100 {
		t.Fatalf("100 within 100: %d %v", len(got), err)
	}
	for _, in := range []string{"n[1-101]", "a,n[1-100]", "r[1-10]-n[1-11]"} {
		if _, err := Expand(in, 100); !errors.Is(err, ErrTooMany) {
			t.Errorf("Expand(%q, 100): %v, want ErrTooMany", in, err)
		}
	}
	// A huge range is refused before anything is made.
	if _, err := Expand("n[0-99999999999]", 0); !errors.Is(err, ErrTooMany) {
		t.Errorf("huge range: %v", err)
	}
	if _, err := Expand("n[0-9999999999999999999999]", 0); err == nil {
		t.Error("overflowing number accepted")
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"bmc-[001-100],spare-1", "a,,b", "n[1-[2]]", "r[1-2]-b[01-02]", "[", "]", ","} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Expand(s, 1000)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) || he.Pos < 1 || he.Pos > len(s)+1 {
				t.Fatalf("Expand(%q): error %v without a position inside the list", s, err)
			}
			return
		}
		if len(got) > 1000 {
			t.Fatalf("Expand(%q): %d names over the bound", s, len(got))
		}
		seen := map[string]bool{}
		for _, n := range got {
			if n == "" || seen[n] || strings.ContainsAny(n, ",[]") {
				t.Fatalf("Expand(%q) = %s", s, fmt.Sprint(got))
			}
			seen[n] = true
		}
	})
}
