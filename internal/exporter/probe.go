package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/state"
)

var (
	descProbeSuccess = prometheus.NewDesc("probe_success",
		"1 if every OOB channel of the target is Connectable after a fresh check (blackbox_exporter's name).", nil, nil)
	descProbeDuration = prometheus.NewDesc("probe_duration_seconds",
		"How long the fresh check took.", nil, nil)
)

// ProbeRegistry is the registry /probe?target=NAME serves: probe_success,
// probe_duration_seconds and the machine's channel series after a fresh
// check (res; mv the machine, for the labels and any channel res lacks).
func ProbeRegistry(mv manager.MachineView, res []manager.CheckResult, took time.Duration) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(probe{mv: mv, res: res, took: took})
	return reg
}

type probe struct {
	mv   manager.MachineView
	res  []manager.CheckResult
	took time.Duration
}

func (p probe) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProbeSuccess, descProbeDuration, descUp, descState, descCondition, descChecked} {
		ch <- d
	}
}

func (p probe) Collect(ch chan<- prometheus.Metric) {
	ok := len(p.res) > 0
	fresh := map[int64]bool{}
	for _, r := range p.res {
		if r.Account.ID == 0 || r.Error != "" || r.State.State != state.Connectable {
			ok = false
		}
		if r.Account.ID != 0 {
			fresh[r.Account.ID] = true
			emit(ch, p.mv, r.ChannelView)
		}
	}
	for _, cv := range p.mv.Channels { // a channel the check did not reach
		if !fresh[cv.Account.ID] {
			ok = false
			emit(ch, p.mv, cv)
		}
	}
	ch <- prometheus.MustNewConstMetric(descProbeSuccess, prometheus.GaugeValue, b2f(ok))
	ch <- prometheus.MustNewConstMetric(descProbeDuration, prometheus.GaugeValue, p.took.Seconds())
}
