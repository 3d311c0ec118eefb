package exporter

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

type fakeLister struct{ mvs []manager.MachineView }

func (f *fakeLister) Machines(context.Context, store.MachineFilter, store.Page) ([]manager.MachineView, error) {
	return f.mvs, nil
}

func machines(n int) []manager.MachineView {
	out := make([]manager.MachineView, n)
	for i := range out {
		out[i] = manager.MachineView{Machine: store.Machine{Name: "m" + string(rune('a'+i)), Group: "g"},
			Channels: []manager.ChannelView{{Account: store.Account{ID: int64(i + 1), Protocol: "ipmi"},
				State: store.ChannelState{State: state.Connectable, Conditions: []state.Condition{state.Degraded}}}}}
	}
	return out
}

// The bound: at the limit every channel's 10 series less the unset check
// time (9 here); one more channel turns them off with one warning; back
// under the limit they return.
func TestChannelsBound(t *testing.T) {
	var logs bytes.Buffer
	src := &fakeLister{mvs: machines(2)}
	c := NewChannels(src, 2, slog.New(slog.NewTextHandler(&logs, nil)))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	count := func() int {
		n, err := testutil.GatherAndCount(reg, "lightsout_channel_up", "lightsout_channel_state", "lightsout_channel_condition")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 2*9 {
		t.Errorf("at the limit: %d series, want 18", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`# HELP lightsout_channel_series_enabled 1 if per-channel series are served, 0 when the channels outnumber lightsout_channel_series_limit (or the limit is negative).
# TYPE lightsout_channel_series_enabled gauge
lightsout_channel_series_enabled 1
`), "lightsout_channel_series_enabled"); err != nil {
		t.Error(err)
	}
	src.mvs = machines(3)
	count()
	if n := count(); n != 0 {
		t.Errorf("over the limit: %d series", n)
	}
	if w := strings.Count(logs.String(), "per-channel metrics off"); w != 1 {
		t.Errorf("%d warnings over two scrapes, want 1:\n%s", w, logs.String())
	}
	src.mvs = machines(1)
	if n := count(); n != 9 || !strings.Contains(logs.String(), "on again") {
		t.Errorf("back under the limit: %d series; log:\n%s", n, logs.String())
	}
	off := NewChannels(src, -1, nil)
	reg2 := prometheus.NewPedanticRegistry()
	reg2.MustRegister(off)
	if n, _ := testutil.GatherAndCount(reg2, "lightsout_channel_up"); n != 0 {
		t.Errorf("a negative limit serves %d series", n)
	}
}
