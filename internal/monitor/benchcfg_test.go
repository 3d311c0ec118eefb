package monitor_test

import (
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
)

func benchConfig(rec *events.Recorder, sch state.Schedule, p probe.Prober) monitor.Config {
	return monitor.Config{Schedule: sch, Damping: state.Damping{Consecutive: 1}, Probers: map[string]probe.Prober{"ipmi": p},
		Sink: rec}
}
