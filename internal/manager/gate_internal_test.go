package manager

import (
	"errors"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// PowerGate lets an operation through when some channel passes power.Gate,
// and otherwise gives the first channel's refusal with its remedy (the
// real account named), as Power would refuse it.
func TestPowerGate(t *testing.T) {
	ch := func(id int64, s state.OOB, r state.Reason) ChannelView {
		return ChannelView{Account: store.Account{ID: id}, State: store.ChannelState{State: s, Reason: r}}
	}
	cases := []struct {
		name string
		mv   MachineView
		ok   bool
		want string
	}{
		{"no channel", MachineView{Machine: store.Machine{Name: "m"}}, false, "no OOB account"},
		{"connectable", MachineView{Machine: store.Machine{Name: "m"}, Channels: []ChannelView{ch(1, state.Connectable, "")}}, true, ""},
		{"busy", MachineView{Machine: store.Machine{Name: "m"}, Channels: []ChannelView{ch(1, state.Connectable, state.ReasonBusy)}}, false, "no free session slot"},
		{"invalid", MachineView{Machine: store.Machine{Name: "m"}, Channels: []ChannelView{ch(7, state.Invalid, state.ReasonGUIDMismatch)}}, false, "lightsout adopt m"},
		{"wrong password, then a good channel", MachineView{Machine: store.Machine{Name: "m"}, Channels: []ChannelView{ch(7, state.NotAuthenticated, state.ReasonWrongPassword), ch(8, state.Connectable, "")}}, true, ""},
		{"wrong password", MachineView{Machine: store.Machine{Name: "m"}, Channels: []ChannelView{ch(7, state.NotAuthenticated, state.ReasonWrongPassword)}}, false, "lightsout accounts set 7 "},
	}
	for _, tc := range cases {
		err := PowerGate(tc.mv)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error()+" "+refusalRemedy(err), tc.want) {
			t.Errorf("%s: %v (remedy %q), want ok=%v containing %q", tc.name, err, refusalRemedy(err), tc.ok, tc.want)
		}
	}
}

func refusalRemedy(err error) string {
	var re *power.RefusedError
	if errors.As(err, &re) {
		return re.Remedy
	}
	return ""
}
