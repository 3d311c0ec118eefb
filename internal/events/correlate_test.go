package events

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/store"
)

func TestSubnetOf(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.4.17":                  "10.0.4.0/24",
		"10.0.4.17:623":              "10.0.4.0/24",
		"::ffff:10.0.4.17":           "10.0.4.0/24",
		"2001:db8:1:2:3:4:5:6":       "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:623":      "2001:db8:1:2::/64",
		"fe80::1%eth0":               "fe80::/64",
		"bmc-7.mgmt.example.com":     "",
		"":                           "",
		"bmc-7.mgmt.example.com:623": "",
	} {
		if got := SubnetOf(in); got != want {
			t.Errorf("SubnetOf(%q) = %q, want %q", in, got, want)
		}
	}
	if FirmwareOf("Dell", "4.40") != "Dell 4.40" || FirmwareOf("", "4.40") != "4.40" || FirmwareOf("Dell", "") != "" {
		t.Error("FirmwareOf")
	}
}

// fleet is a test fleet: name → membership.
type fleet map[string]Member

// mkFleet builds n members named prefix-i with the given membership.
func mkFleet(f fleet, prefix string, n int, m Member) fleet {
	for i := 1; i <= n; i++ {
		f[fmt.Sprintf("%s-%d", prefix, i)] = m
	}
	return f
}

func findings(evs []store.Event) []Finding {
	var out []Finding
	for _, e := range evs {
		if e.Code != FleetCorrelated {
			continue
		}
		var f Finding
		if err := json.Unmarshal(e.Data, &f); err != nil {
			panic(err)
		}
		out = append(out, f)
	}
	return out
}

func TestCorrelate(t *testing.T) {
	fwA := Member{Firmware: "Dell 4.40", Enclosure: "", Subnet: "10.0.1.0/24"}
	fwB := Member{Firmware: "Dell 5.10", Subnet: "10.0.1.0/24"}
	// A fleet of 12 in one /24: 4 on firmware A, 8 on B.
	base := mkFleet(mkFleet(fleet{}, "a", 4, fwA), "b", 8, fwB)
	// 12 machines, each firmware shared by 3, all in one /24.
	spread := fleet{}
	for i := 1; i <= 12; i++ {
		spread[fmt.Sprintf("s-%d", i)] = Member{Firmware: fmt.Sprintf("Acme %d.0", (i-1)%4+1), Subnet: "10.0.2.0/24"}
	}
	// Two enclosures of 4 blades, blades on several firmwares, several subnets.
	blades := fleet{}
	for i := 1; i <= 8; i++ {
		encl := "encl-1"
		if i > 4 {
			encl = "encl-2"
		}
		blades[fmt.Sprintf("blade-%d", i)] = Member{Firmware: fmt.Sprintf("HPE %d.0", i%3), Enclosure: encl, Subnet: fmt.Sprintf("10.9.%d.0/24", i)}
	}
	type want struct {
		factors string // "firmware=Dell 4.40,enclosure=…"
		members string
	}
	tests := []struct {
		name    string
		cfg     CorrelateConfig
		members fleet
		failing []string
		want    []want // findings over the whole run
	}{
		{"every BMC of one firmware", CorrelateConfig{}, base, []string{"a-1", "a-2", "a-3", "a-4"},
			[]want{{"firmware=Dell 4.40", "a-1,a-2"}, {"firmware=Dell 4.40", "a-1,a-2,a-3"}, {"firmware=Dell 4.40", "a-1,a-2,a-3,a-4"}}},
		{"exactly the share (2 of 4)", CorrelateConfig{}, base, []string{"a-1", "a-3"},
			[]want{{"firmware=Dell 4.40", "a-1,a-3"}}},
		{"below the share (1 of 4, 3 of 8)", CorrelateConfig{}, base, []string{"a-1", "b-1", "b-2", "b-3"}, nil},
		{"not a common factor: failing BMCs spread over every firmware", CorrelateConfig{}, spread,
			[]string{"s-1", "s-2", "s-3", "s-4"}, nil},
		{"spread, but one firmware reaches the share", CorrelateConfig{}, spread,
			[]string{"s-1", "s-2", "s-3", "s-4", "s-5"}, []want{{"firmware=Acme 1.0", "s-1,s-5"}}},
		{"a fleet-wide subnet finding when most of the fleet fails", CorrelateConfig{}, spread,
			[]string{"s-1", "s-2", "s-3", "s-4", "s-6", "s-7"},
			[]want{{"firmware=Acme 2.0", "s-2,s-6"}, {"firmware=Acme 3.0", "s-3,s-7"}, {"subnet=10.0.2.0/24", "s-1,s-2,s-3,s-4,s-6,s-7"}}},
		{"groups smaller than MinGroup are ignored", CorrelateConfig{},
			mkFleet(mkFleet(fleet{}, "x", 2, Member{Firmware: "X 1.0"}), "y", 5, Member{Firmware: "Y 1.0"}),
			[]string{"x-1", "x-2"}, nil},
		{"MinMembers: one failing BMC is never a pattern", CorrelateConfig{Share: 0.3, MinMembers: 2},
			mkFleet(fleet{}, "z", 3, Member{Firmware: "Z 1.0"}), []string{"z-1"}, nil},
		{"a lower share", CorrelateConfig{Share: 0.25}, base, []string{"b-1", "b-2"},
			[]want{{"firmware=Dell 5.10", "b-1,b-2"}}},
		{"an enclosure", CorrelateConfig{}, blades, []string{"blade-5", "blade-6", "blade-7"},
			[]want{{"enclosure=encl-2", "blade-5,blade-6"}, {"enclosure=encl-2", "blade-5,blade-6,blade-7"}}},
		{"unknown factors group nothing", CorrelateConfig{}, mkFleet(fleet{}, "u", 5, Member{}),
			[]string{"u-1", "u-2", "u-3", "u-4", "u-5"}, nil},
		{"one finding names every factor the members share", CorrelateConfig{},
			mkFleet(mkFleet(fleet{}, "c", 3, Member{Firmware: "Dell 4.40", Enclosure: "encl-9", Subnet: "10.7.7.0/24"}),
				"d", 6, Member{Firmware: "Dell 5.10", Subnet: "10.7.8.0/24"}),
			[]string{"c-1", "c-2", "c-3"},
			[]want{{"firmware=Dell 4.40,enclosure=encl-9,subnet=10.7.7.0/24", "c-1,c-2"},
				{"firmware=Dell 4.40,enclosure=encl-9,subnet=10.7.7.0/24", "c-1,c-2,c-3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCorrelator(tt.cfg)
			names := make([]string, 0, len(tt.members))
			for n := range tt.members {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				c.SetMember(n, tt.members[n], t0)
			}
			var evs []store.Event
			for i, src := range tt.failing {
				evs = append(evs, c.Hold(OOBTimeoutFlood, src, true, sec(float64(i)))...)
			}
			var got []want
			for _, f := range findings(evs) {
				var fs []string
				for _, fv := range f.Factors {
					fs = append(fs, string(fv.Factor)+"="+fv.Value)
				}
				if f.Code != OOBTimeoutFlood || f.Factor != f.Factors[0].Factor || f.Value != f.Factors[0].Value {
					t.Errorf("finding %+v", f)
				}
				got = append(got, want{strings.Join(fs, ","), strings.Join(f.Members, ",")})
			}
			slices.SortFunc(got, func(a, b want) int { return strings.Compare(a.factors+a.members, b.factors+b.members) })
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("findings\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestCorrelateLifecycle(t *testing.T) {
	c := NewCorrelator(CorrelateConfig{Window: 10 * time.Minute, MemberTTL: time.Hour})
	for i := 1; i <= 4; i++ {
		c.SetMember(fmt.Sprint("a-", i), Member{Firmware: "Dell 4.40"}, t0)
	}
	for i := 1; i <= 3; i++ {
		c.SetMember(fmt.Sprint("b-", i), Member{Firmware: "HPE 2.72"}, t0)
	}
	hold := func(src string, held bool, at float64) int {
		return len(findings(c.Hold(OOBNotResponding, src, held, sec(at))))
	}
	if hold("a-1", true, 1) != 0 || hold("a-2", true, 2) != 1 || hold("a-3", true, 3) != 1 {
		t.Fatal("2 of 4 should make a finding, the third member report it again")
	}
	// Holding again is no news; a member dropping out (still over the
	// share) is no news either, nor its return.
	if hold("a-2", true, 4) != 0 || hold("a-3", false, 5) != 0 || hold("a-3", true, 6) != 0 {
		t.Fatal("repeat, shrink or regrowth to the reported set reported")
	}
	// A new member: reported again (the stored event is counted up).
	if hold("a-4", true, 7) != 1 {
		t.Fatal("growth not reported")
	}
	hold("a-3", false, 8)
	hold("a-4", false, 8)
	// Another code on the same group is a separate finding with its own source.
	evs := c.Hold(OOBDegraded, "a-1", true, sec(7))
	evs = append(evs, c.Hold(OOBDegraded, "a-2", true, sec(8))...)
	if len(evs) != 1 || evs[0].Source != "fleet:oob.degraded:firmware=Dell 4.40" {
		t.Fatalf("second code: %+v", evs)
	}
	// Released below the share: forgotten, so a recurrence is reported.
	hold("a-1", false, 9)
	hold("a-2", false, 10)
	if hold("a-1", true, 11) != 0 || hold("a-2", true, 12) != 1 {
		t.Fatal("a recurrence after the finding ended should be reported")
	}

	// One-shot raises count for Window, then expire on a tick.
	if len(findings(c.Raise(AuditCipher0Enabled, "b-1", sec(0)))) != 0 ||
		len(findings(c.Raise(AuditCipher0Enabled, "b-2", sec(60)))) != 1 {
		t.Fatal("raises")
	}
	if len(findings(c.Raise(AuditCipher0Enabled, "b-2", sec(120)))) != 0 {
		t.Fatal("a repeated raise is no news")
	}
	c.Tick(sec(11 * 60)) // b-1 expired (raised at 0), b-2 not (120)
	if len(c.raised[AuditCipher0Enabled]) != 1 {
		t.Fatalf("after expiry: %v", c.raised[AuditCipher0Enabled])
	}
	if _, ok := c.active["fleet:audit.cipher0_enabled:firmware=HPE 2.72"]; ok {
		t.Fatal("expired finding still active")
	}
	if len(findings(c.Raise(AuditCipher0Enabled, "b-3", sec(11*60+1)))) != 1 {
		t.Fatal("raise after expiry")
	}

	// Sources not seen for MemberTTL leave their groups and their raises.
	c.SetMember("a-1", Member{Firmware: "Dell 4.40"}, sec(3000))
	c.Tick(sec(3700))
	if c.Members() != 1 || c.sizes[FactorFirmware]["Dell 4.40"] != 1 || c.sizes[FactorFirmware]["HPE 2.72"] != 0 {
		t.Fatalf("after TTL: %d members, sizes %v", c.Members(), c.sizes)
	}
	for code, rs := range c.raised {
		for src := range rs {
			if src != "a-1" {
				t.Errorf("raise of forgotten %s on %s kept", code, src)
			}
		}
	}
}

func TestCorrelateGrowthThrottle(t *testing.T) {
	c := NewCorrelator(CorrelateConfig{})
	for i := 1; i <= 100; i++ {
		c.SetMember(fmt.Sprintf("m-%03d", i), Member{Firmware: "Dell 4.40"}, t0)
	}
	var sizes []int
	for i := 1; i <= 100; i++ {
		for _, f := range findings(c.Hold(OOBNotResponding, fmt.Sprintf("m-%03d", i), true, sec(float64(i)/10))) {
			sizes = append(sizes, len(f.Members))
		}
	}
	// Small findings grow one by one; larger ones by a quarter at least.
	if fmt.Sprint(sizes) != "[50 63 79 99]" {
		t.Fatalf("reported sizes %v", sizes)
	}
	// A tick a minute later reports the rest.
	evs := findings(c.Tick(sec(70)))
	if len(evs) != 1 || len(evs[0].Members) != 100 {
		t.Fatalf("tick: %+v", evs)
	}
	if len(findings(c.Tick(sec(200)))) != 0 {
		t.Fatal("reported again without growth")
	}
	// Small groups report every new member at once.
	s := NewCorrelator(CorrelateConfig{})
	for i := 1; i <= 12; i++ {
		s.SetMember(fmt.Sprint("s-", i), Member{Enclosure: "e"}, t0)
	}
	sizes = nil
	for i := 1; i <= 12; i++ {
		for _, f := range findings(s.Hold(OOBNotResponding, fmt.Sprint("s-", i), true, t0)) {
			sizes = append(sizes, len(f.Members))
		}
	}
	if fmt.Sprint(sizes) != "[6 7 8 9 10]" {
		t.Fatalf("small group reported sizes %v", sizes)
	}
}

func TestCorrelateMembership(t *testing.T) {
	c := NewCorrelator(CorrelateConfig{})
	c.SetMember("m", Member{Firmware: "Dell 4.40", Enclosure: "e1", Subnet: "10.0.0.0/24"}, t0)
	// A check that did not reach the firmware keeps the known revision.
	c.SetMember("m", Member{Enclosure: "e1", Subnet: "10.0.0.0/24"}, sec(1))
	if c.members["m"].m.Firmware != "Dell 4.40" || c.sizes[FactorFirmware]["Dell 4.40"] != 1 {
		t.Fatalf("firmware lost: %+v %v", c.members["m"], c.sizes)
	}
	// Moves between groups update the counts.
	c.SetMember("m", Member{Firmware: "Dell 5.10", Enclosure: "e2", Subnet: "10.0.1.0/24"}, sec(2))
	if c.sizes[FactorFirmware]["Dell 4.40"] != 0 || c.sizes[FactorFirmware]["Dell 5.10"] != 1 ||
		c.sizes[FactorEnclosure]["e1"] != 0 || c.sizes[FactorEnclosure]["e2"] != 1 || c.sizes[FactorSubnet]["10.0.1.0/24"] != 1 {
		t.Fatalf("sizes %v", c.sizes)
	}
	if _, ok := c.sizes[FactorFirmware]["Dell 4.40"]; ok {
		t.Fatal("empty groups are deleted")
	}
	if c.Config() != DefaultCorrelate {
		t.Fatalf("defaults %+v", c.Config())
	}
}

func TestCorrelatedEventContent(t *testing.T) {
	c := NewCorrelator(CorrelateConfig{})
	for i := 1; i <= 14; i++ {
		c.SetMember(fmt.Sprintf("web-%02d", i), Member{Firmware: "Dell 4.40"}, t0)
	}
	for i := 1; i <= 12; i++ {
		c.Hold(OOBIdentityMismatch, fmt.Sprintf("web-%02d", i), true, t0)
	}
	evs := c.Tick(t0.Add(2 * time.Minute))
	if len(evs) != 1 {
		t.Fatalf("events %+v", evs)
	}
	e := evs[0]
	if e.Code != FleetCorrelated || e.Severity != store.SeverityCritical || e.Source != "fleet:oob.identity_mismatch:firmware=Dell 4.40" {
		t.Fatalf("event %+v", e)
	}
	for _, s := range []string{"oob.identity_mismatch on 12 BMCs", "firmware Dell 4.40 (12 of 14)", "web-01", "web-10", "and 2 more"} {
		if !strings.Contains(e.Message, s) {
			t.Errorf("message %q lacks %q", e.Message, s)
		}
	}
	if strings.Contains(e.Message, "web-11") {
		t.Errorf("message lists more than 10 members: %q", e.Message)
	}
	f := findings(evs)[0]
	if len(f.Members) != 12 || f.GroupSize != 14 || f.Share != 12.0/14 {
		t.Fatalf("finding %+v", f)
	}
}

// Active lists the findings that hold, with when each was first reported
// (growth keeps it), for incidents; a finding released below the share
// leaves it.
func TestCorrelateActive(t *testing.T) {
	c := NewCorrelator(CorrelateConfig{Window: 10 * time.Minute, MemberTTL: time.Hour})
	for i := 1; i <= 4; i++ {
		c.SetMember(fmt.Sprint("a-", i), Member{Firmware: "Dell 4.40", Subnet: fmt.Sprint("10.0.", i, ".0/24")}, t0)
	}
	if len(c.Active()) != 0 {
		t.Fatal("active before any raise")
	}
	c.Hold(OOBDegraded, "a-1", true, sec(1))
	c.Hold(OOBDegraded, "a-2", true, sec(2))
	c.Hold(OOBDegraded, "a-3", true, sec(3))
	got := c.Active()
	if len(got) != 1 {
		t.Fatalf("active: %+v", got)
	}
	f := got[0]
	if f.Code != OOBDegraded || f.Factor != FactorFirmware || f.Value != "Dell 4.40" || f.GroupSize != 4 ||
		fmt.Sprint(f.Members) != "[a-1 a-2 a-3]" || !f.Since.Equal(sec(2)) {
		t.Errorf("finding %+v: want oob.degraded on firmware Dell 4.40, 3 of 4, since the second raise", f)
	}
	c.Hold(OOBDegraded, "a-1", false, sec(4))
	c.Hold(OOBDegraded, "a-2", false, sec(5))
	if got := c.Active(); len(got) != 0 {
		t.Errorf("released finding still active: %+v", got)
	}
}

// TestCorrelateIncremental drives the incremental correlator and the one
// that regroups every raising source on each change (correlate_ref_test.go)
// with the same random sequences of SetMember, Raise, Hold and Tick over a
// small fleet whose groups often coincide (so findings merge and split),
// and requires the same events, active findings and spreads after every
// step.
func TestCorrelateIncremental(t *testing.T) {
	pick := func(rng *rand.Rand, vals ...string) string { return vals[rng.IntN(len(vals))] }
	codes := []string{"oob.degraded", "oob.not_responding", "audit.default_password"}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 19))
		cfg := CorrelateConfig{Share: []float64{0.3, 0.5, 0.7, 1}[rng.IntN(4)], MinGroup: 2 + rng.IntN(2),
			MinMembers: 1 + rng.IntN(2), Window: 30 * time.Minute, MemberTTL: 2 * time.Hour}
		inc, ref := NewCorrelator(cfg), newRefCorrelator(cfg)
		now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
		var srcs []string
		// Some seeds make large findings that grow fast (the regrow
		// throttle): 30 sources, seconds apart, few groups.
		big := seed%3 == 0
		maxStep, nsrc, fw := 300, 6+rng.IntN(14), []string{"", "Dell 4.40", "Dell 4.50", "HPE 2.1"}
		if big {
			maxStep, nsrc, fw = 20, 30, []string{"Dell 4.40", "Dell 4.40", "Dell 4.40", "HPE 2.1"}
		}
		for i := range nsrc {
			srcs = append(srcs, fmt.Sprintf("bmc-%02d", i))
		}
		for step := range 400 {
			switch d := rng.IntN(100); {
			case d < 3:
				now = now.Add(3 * time.Hour) // members expire
			case d < 6:
				now = now.Add(-time.Duration(rng.IntN(120)) * time.Second) // a late caller
			default:
				now = now.Add(time.Duration(rng.IntN(maxStep)) * time.Second)
			}
			src, code := srcs[rng.IntN(len(srcs))], codes[rng.IntN(len(codes))]
			var a, b []store.Event
			op := rng.IntN(100)
			switch {
			case op < 25 && !(big && step > 40 && op > 5):
				m := Member{Firmware: pick(rng, fw...),
					Enclosure: pick(rng, "", "enc-1", "enc-2"), Subnet: pick(rng, "", "10.0.1.0/24", "10.0.2.0/24")}
				inc.SetMember(src, m, now)
				ref.SetMember(src, m, now)
			case op < 45:
				a, b = inc.Raise(code, src, now), ref.Raise(code, src, now)
			case op < 90:
				held := rng.IntN(3) > 0
				a, b = inc.Hold(code, src, held, now), ref.Hold(code, src, held, now)
			default:
				a, b = inc.Tick(now), ref.Tick(now)
			}
			where := fmt.Sprintf("seed %d step %d (op %d, %s, %s)", seed, step, op, code, src)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: events differ:\nincremental %+v\nregroup     %+v", where, a, b)
			}
			if x, y := inc.Active(), ref.Active(); !reflect.DeepEqual(x, y) {
				t.Fatalf("%s: active findings differ:\nincremental %+v\nregroup     %+v", where, x, y)
			}
			if x, okx := inc.Spread(src, codes[:2], now); true {
				y, oky := ref.Spread(src, codes[:2], now)
				if okx != oky || !reflect.DeepEqual(x, y) {
					t.Fatalf("%s: spread differs: %+v vs %+v", where, x, y)
				}
			}
			if inc.Members() != ref.Members() {
				t.Fatalf("%s: members %d vs %d", where, inc.Members(), ref.Members())
			}
		}
	}
}
