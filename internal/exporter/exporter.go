// Package exporter serves what a Prometheus user expects of an exporter:
// per-channel series (lightsout_channel_up, _state, _condition,
// _last_check_timestamp_seconds) labelled with machine, protocol, zone,
// group and enclosure, bounded in cardinality (above the bound they are off,
// with a warning and lightsout_channel_series_enabled 0), and a
// multi-target /probe?target=NAME in blackbox_exporter's style: a fresh
// check of one machine, its results as metrics, so existing relabeling
// configs work.
package exporter

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// DefaultMaxChannels bounds the channels given per-channel series (each
// has 10 series).
const DefaultMaxChannels = 5000

// Lister lists machines with their channels' states (manager.Manager).
type Lister interface {
	Machines(ctx context.Context, f store.MachineFilter, p store.Page) ([]manager.MachineView, error)
}

var labels = []string{"machine", "account", "protocol", "zone", "group", "enclosure"}

var (
	descUp = prometheus.NewDesc("lightsout_channel_up",
		"1 if the OOB channel is Connectable (conditions aside), else 0.", labels, nil)
	descState = prometheus.NewDesc("lightsout_channel_state",
		"1 for the channel's declared OOB state, 0 for the others.", append(slices.Clone(labels), "state"), nil)
	descCondition = prometheus.NewDesc("lightsout_channel_condition",
		"1 if the channel has the condition (Busy, Degraded, Insecure), else 0.", append(slices.Clone(labels), "condition"), nil)
	descChecked = prometheus.NewDesc("lightsout_channel_last_check_timestamp_seconds",
		"When the channel was last checked (Unix time); absent until the first check.", labels, nil)
	descEnabled = prometheus.NewDesc("lightsout_channel_series_enabled",
		"1 if per-channel series are served, 0 when the channels outnumber lightsout_channel_series_limit (or the limit is negative).", nil, nil)
	descLimit = prometheus.NewDesc("lightsout_channel_series_limit",
		"The most channels given per-channel series (--channel-metrics-max).", nil, nil)
)

var states = []state.OOB{state.Connectable, state.NotResponding, state.NotAuthenticated, state.Invalid, state.Unknown}

// Channels is the per-channel collector.
type Channels struct {
	src Lister
	max int
	log *slog.Logger
	// Timeout bounds one scrape's listing (default 10 s).
	Timeout time.Duration
	// Count, when set, says how many channels there are at least (the
	// monitor's count, monitor.Monitor.Len: O(1)). Above the limit a
	// scrape then answers "off" without listing the fleet — the listing
	// reads every machine and account from the store, which at 100,000
	// channels took longer than a scrape may. Within the limit the
	// listing decides, as without Count.
	Count func() int

	mu     sync.Mutex
	warned bool
}

// NewChannels returns the collector: per-channel series for at most max
// channels (0: DefaultMaxChannels; negative: none).
func NewChannels(src Lister, max int, log *slog.Logger) *Channels {
	if max == 0 {
		max = DefaultMaxChannels
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Channels{src: src, max: max, log: log, Timeout: 10 * time.Second}
}

func (c *Channels) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descState, descCondition, descChecked, descEnabled, descLimit} {
		ch <- d
	}
}

func (c *Channels) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(max(c.max, 0)))
	if c.max < 0 {
		ch <- prometheus.MustNewConstMetric(descEnabled, prometheus.GaugeValue, 0)
		return
	}
	var mvs []manager.MachineView
	n := 0
	if c.Count != nil {
		n = c.Count()
	}
	if n <= c.max {
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		defer cancel()
		var err error
		mvs, err = c.src.Machines(ctx, store.MachineFilter{}, store.Page{})
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descUp, err)
			return
		}
		n = 0
		for _, mv := range mvs {
			n += len(mv.Channels)
		}
	}
	c.mu.Lock()
	if n > c.max {
		if !c.warned {
			c.warned = true
			c.log.Warn("per-channel metrics off: more channels than the limit", "channels", n, "limit", c.max,
				"hint", "raise --channel-metrics-max, or use the fleet totals (lightsout_channels) and /probe?target=NAME")
		}
		c.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descEnabled, prometheus.GaugeValue, 0)
		return
	}
	if c.warned {
		c.warned = false
		c.log.Info("per-channel metrics on again", "channels", n, "limit", c.max)
	}
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descEnabled, prometheus.GaugeValue, 1)
	for _, mv := range mvs {
		for _, cv := range mv.Channels {
			emit(ch, mv, cv)
		}
	}
}

// emit sends one channel's series.
func emit(ch chan<- prometheus.Metric, mv manager.MachineView, cv manager.ChannelView) {
	lv := []string{mv.Name, strconv.FormatInt(cv.Account.ID, 10), cv.Account.Protocol, manager.ZoneOf(mv.Machine), mv.Group, mv.Enclosure}
	cs := cv.State
	st := cs.State
	if st == "" {
		st = state.Unknown
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b2f(st == state.Connectable), lv...)
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, b2f(st == s), append(slices.Clone(lv), string(s))...)
	}
	for _, c := range state.Conditions {
		ch <- prometheus.MustNewConstMetric(descCondition, prometheus.GaugeValue, b2f(slices.Contains(cs.Conditions, c)), append(slices.Clone(lv), string(c))...)
	}
	if !cs.CheckedAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(descChecked, prometheus.GaugeValue, float64(cs.CheckedAt.UnixMilli())/1000, lv...)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
