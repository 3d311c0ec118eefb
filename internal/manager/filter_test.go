package manager

import (
	"errors"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

func TestViewFilter(t *testing.T) {
	ch := func(s state.OOB, r state.Reason, cs ...state.Condition) ChannelView {
		return ChannelView{State: store.ChannelState{State: s, Reason: r, Conditions: cs}}
	}
	mv := func(enc string, chs ...ChannelView) MachineView {
		return MachineView{Machine: store.Machine{Name: "m", Enclosure: enc}, Channels: chs}
	}
	degradedBlade := mv("enc-a", ch(state.Connectable, "", state.Degraded, state.Insecure))
	refused := mv("", ch(state.NotAuthenticated, state.ReasonWrongPassword), ch(state.Connectable, ""))
	never := mv("", ChannelView{})
	cases := []struct {
		f    ViewFilter
		m    MachineView
		want bool
	}{
		{ViewFilter{}, never, true},
		{ViewFilter{State: state.Unknown}, never, true},
		{ViewFilter{State: state.Connectable}, degradedBlade, true},
		{ViewFilter{Condition: state.Degraded}, degradedBlade, true},
		{ViewFilter{Condition: state.Busy}, degradedBlade, false},
		{ViewFilter{Enclosure: "enc-a", Condition: state.Insecure}, degradedBlade, true},
		{ViewFilter{Enclosure: "enc-b"}, degradedBlade, false},
		{ViewFilter{State: state.NotAuthenticated, Reason: state.ReasonWrongPassword}, refused, true},
		{ViewFilter{State: state.Connectable, Reason: state.ReasonWrongPassword}, refused, false}, // one channel must match all
		{ViewFilter{Reason: state.ReasonSilent}, refused, false},
		{ViewFilter{Zone: store.DefaultZone}, refused, true}, // no zone named: the default one
		{ViewFilter{Zone: "dc2"}, refused, false},
		{ViewFilter{Zone: "dc2", State: state.Connectable}, MachineView{Machine: store.Machine{Name: "z", Zone: "dc2"}, Channels: []ChannelView{ch(state.Connectable, "")}}, true},
		{ViewFilter{Zone: store.DefaultZone}, MachineView{Machine: store.Machine{Name: "z", Zone: "dc2"}}, false},
	}
	for i, tc := range cases {
		if got := tc.f.Match(tc.m); got != tc.want {
			t.Errorf("case %d: %+v on %+v: %v, want %v", i, tc.f, tc.m.Channels, got, tc.want)
		}
	}
	for _, bad := range []struct {
		f     ViewFilter
		field string
	}{
		{ViewFilter{State: "Up"}, "state"}, {ViewFilter{Reason: "wrong_pasword"}, "reason"}, {ViewFilter{Condition: "degraded"}, "condition"},
	} {
		err := bad.f.Check()
		var fe *store.FieldError
		if err == nil || !errors.As(err, &fe) || fe.Field != bad.field || !strings.Contains(fe.Reason, "is not a") {
			t.Errorf("%+v: %v, want a field error on %s", bad.f, err, bad.field)
		}
	}
	if err := (ViewFilter{State: state.Invalid, Reason: state.ReasonGUIDMismatch, Condition: state.Busy}).Check(); err != nil {
		t.Error(err)
	}
}
