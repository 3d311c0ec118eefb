package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bench/internal/fleet"
)

// simShard is one running `lightsout sim` process: a slice of the fleet
// with its own address range (127.(firstOctet+index).0.1 upwards), seed and
// control API. One process holds one UDP socket per BMC, so a fleet larger
// than RLIMIT_NOFILE runs as several shards.
type simShard struct {
	*fleet.Sim
	index  int
	offset int // global index of its first BMC, minus 1
}

// firstOctet is the second octet of the first shard's addresses: away from
// 127.1.x.y, where `lightsout sim`, the demo and tests put their fleets by
// default, so that nothing else on the machine talks to this fleet (the
// simulator counts sessions per client address, and every local process is
// 127.0.0.1). --base-octet moves it (two runs on one machine).
var firstOctet = 201

// maxShards keeps every shard inside 127.0.0.0/8.
func maxShards() int { return 254 - firstOctet + 1 }

// startSim starts shard index of count BMCs and waits (at most
// readyTimeout) for its ready line.
func startSim(bin, tmp string, index, count, offset int, pwFile string, redfish bool, readyTimeout time.Duration) (*simShard, error) {
	dir := filepath.Join(tmp, fmt.Sprintf("sim-%d", index))
	s, err := fleet.StartShard(index, fleet.Options{
		Bin: bin, Dir: dir, Count: count, Seed: index + 1,
		BaseAddr:  fmt.Sprintf("127.%d.0.1", firstOctet+index),
		Inventory: filepath.Join(dir, "fleet.yaml"), PasswordFile: pwFile, Control: "127.0.0.1:0", Redfish: redfish,
		CPU: pin.CPU(simCPU), Env: childEnv(), Procs: running, ReadyTimeout: readyTimeout,
	})
	if err != nil {
		return nil, err
	}
	return &simShard{Sim: s, index: index, offset: offset}, nil
}

// bmcs reads every server BMC of the shard, and checks that they are all
// there.
func (s *simShard) bmcs() ([]fleet.BMC, error) {
	l, err := s.List(5 * time.Minute)
	if err != nil {
		return nil, err
	}
	if l.Count != len(l.BMCs) || len(l.BMCs) != s.Count {
		return nil, fmt.Errorf("GET /v1/bmcs: count %d, %d BMCs listed, %d expected", l.Count, len(l.BMCs), s.Count)
	}
	return l.BMCs, nil
}

// totals reads and sums the counters of every shard.
func totals(shards []*simShard) (fleet.Totals, error) {
	var t fleet.Totals
	for _, s := range shards {
		bs, err := s.bmcs()
		if err != nil {
			return t, fmt.Errorf("simulator shard %d: %v", s.index, err)
		}
		for _, b := range bs {
			t.Add(b.Counters)
		}
	}
	return t, nil
}

// sessionAudit is what the fleet saw of our sessions.
type sessionAudit struct {
	BMCs               int
	Checked            int // sessions_opened ≥ 1
	Totals             fleet.Totals
	MaxPerClient       int64
	MaxOpen            int64
	MaxInFlight        int64
	OverPerClient      []string // max_sessions_per_client > 1
	OverOpen           []string // max_sessions_open > 1
	OverInFlight       []string // max_in_flight > 1
	StillOpen          []string // sessions_open > 0 after the server stopped
	Unchecked          []string // never a session
	WithAuthFailures   []string
	WithRefusedSession []string
}

// redfishTotals sums the Redfish counters of every BMC of every shard.
func redfishTotals(shards []*simShard) (fleet.RedfishCounters, error) {
	var t fleet.RedfishCounters
	for _, s := range shards {
		bs, err := s.bmcs()
		if err != nil {
			return t, fmt.Errorf("simulator shard %d: %v", s.index, err)
		}
		for _, b := range bs {
			if b.Redfish == nil {
				return t, fmt.Errorf("simulator shard %d: %s serves no Redfish", s.index, b.Name)
			}
			t.Requests += b.Redfish.Requests
			t.SessionsOpened += b.Redfish.SessionsOpened
			t.SessionsClosed += b.Redfish.SessionsClosed
			t.SessionsOpen += b.Redfish.SessionsOpen
			t.Unauthorized += b.Redfish.Unauthorized
			t.Busy += b.Redfish.Busy
			t.MaxSessionsOpen = max(t.MaxSessionsOpen, b.Redfish.MaxSessionsOpen)
		}
	}
	return t, nil
}

// asCounters is what the audit reads of a BMC's Redfish counters: its
// sessions (all from us: only the server uses the simulator, so the most
// open at once is also the most from one client), requests in place of
// datagrams, 401s as authentication failures.
func asCounters(r *fleet.RedfishCounters) fleet.Counters {
	if r == nil {
		return fleet.Counters{}
	}
	return fleet.Counters{PacketsIn: r.Requests, SessionsOpened: r.SessionsOpened, SessionsClosed: r.SessionsClosed,
		ClosedByClient: r.SessionsClosed, SessionsOpen: r.SessionsOpen, MaxSessionsOpen: r.MaxSessionsOpen,
		MaxSessionsPerClient: r.MaxSessionsOpen, AuthAttempts: r.SessionsOpened + r.Unauthorized, AuthFailures: r.Unauthorized}
}

// audit reads every BMC of every shard and collects the violations, named
// by the global name the server knows them by; with redfish, from the
// BMCs' Redfish counters.
func audit(shards []*simShard, name func(s *simShard, local string) string, redfish bool) (sessionAudit, error) {
	var a sessionAudit
	for _, s := range shards {
		bs, err := s.bmcs()
		if err != nil {
			return a, fmt.Errorf("simulator shard %d: %v", s.index, err)
		}
		for _, b := range bs {
			c := b.Counters
			if redfish {
				c = asCounters(b.Redfish)
			}
			n := name(s, b.Name)
			a.BMCs++
			a.Totals.Add(c)
			a.MaxPerClient = max(a.MaxPerClient, c.MaxSessionsPerClient)
			a.MaxOpen = max(a.MaxOpen, c.MaxSessionsOpen)
			a.MaxInFlight = max(a.MaxInFlight, c.MaxInFlight)
			if c.SessionsOpened > 0 || (redfish && c.PacketsIn > 0) {
				a.Checked++
			} else {
				a.Unchecked = append(a.Unchecked, n)
			}
			if c.MaxSessionsPerClient > 1 {
				a.OverPerClient = append(a.OverPerClient, n)
			}
			if c.MaxSessionsOpen > 1 {
				a.OverOpen = append(a.OverOpen, n)
			}
			if c.MaxInFlight > 1 {
				a.OverInFlight = append(a.OverInFlight, n)
			}
			if c.SessionsOpen > 0 {
				a.StillOpen = append(a.StillOpen, n)
			}
			if c.AuthFailures > 0 {
				a.WithAuthFailures = append(a.WithAuthFailures, n)
			}
			if c.SessionsRefused > 0 {
				a.WithRefusedSession = append(a.WithRefusedSession, n)
			}
		}
	}
	if a.BMCs == 0 {
		return a, errors.New("the simulator lists no BMCs")
	}
	return a, nil
}

// someNames lists at most k names, and how many more.
func someNames(names []string, k int) string {
	if len(names) <= k {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:k], ", ") + fmt.Sprintf(" and %d more", len(names)-k)
}
