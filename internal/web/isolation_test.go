package web

import (
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/state"
)

func TestIsolate(t *testing.T) {
	b := func(name string, s state.OOB) row { return row{Name: name, State: s} }
	C, NR, NA := state.Connectable, state.NotResponding, state.NotAuthenticated
	tests := []struct {
		blades []row
		level  string
		says   string
	}{
		{nil, "none", "no blade"},
		{[]row{b("a", C), b("b", NA)}, "ok", "path works"},
		{[]row{b("a", NR), b("b", NR), b("c", NR)}, "shared", "all 3 blades are silent"},
		{[]row{b("a", NR), b("b", C), b("c", NR)}, "partial", "2 of 3 blades are silent (a, c)"},
		{[]row{b("a", NR)}, "partial", "1 of 1"}, // one blade alone proves nothing shared
	}
	for _, tt := range tests {
		v := isolate(tt.blades)
		if v.Level != tt.level || !strings.Contains(v.Summary, tt.says) {
			t.Errorf("%v: %+v, want %s containing %q", tt.blades, v, tt.level, tt.says)
		}
	}
}
