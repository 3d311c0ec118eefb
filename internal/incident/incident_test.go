package incident

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

var t0 = time.Date(2026, 12, 7, 9, 14, 0, 0, time.UTC)

const (
	guidA = "11111111-2222-3333-4444-555555555555"
	guidB = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	guidC = "99999999-8888-7777-6666-555555555555"
)

func ch(machine string, id int64, s state.OOB, r state.Reason) Channel {
	return Channel{Machine: machine, AccountID: id, User: "admin", Address: "10.0.0." + fmt.Sprint(id), State: s, Reason: r, Since: t0.Add(time.Duration(id) * time.Minute)}
}

func with(c Channel, f func(*Channel)) Channel { f(&c); return c }

// summary is what a case asserts: ID → sorted members.
func summary(incs []Incident) map[string]string {
	out := map[string]string{}
	for _, i := range incs {
		out[i.ID] = strings.Join(i.Members, ",")
	}
	return out
}

func TestGroup(t *testing.T) {
	blade := func(m string, id int64, enc string, s state.OOB) Channel {
		return with(ch(m, id, s, state.ReasonSilent), func(c *Channel) { c.Enclosure = enc })
	}
	cases := []struct {
		name string
		in   Input
		want map[string]string
	}{
		{"healthy fleet: no incident", Input{Channels: []Channel{ch("a", 1, state.Connectable, ""), ch("b", 2, state.Unknown, "")}}, map[string]string{}},
		{"dead enclosure: one incident with its blades, not one per blade",
			Input{Channels: []Channel{blade("b1", 1, "enc-b", state.NotResponding), blade("b2", 2, "enc-b", state.NotResponding), blade("b3", 3, "enc-b", state.NotResponding),
				blade("a1", 4, "enc-a", state.Connectable), blade("a2", 5, "enc-a", state.NotResponding)},
				Enclosures: []Enclosure{{"enc-b", "10.9.9.9"}, {"enc-a", "10.9.9.8"}}},
			map[string]string{"enclosure:enc-b": "b1,b2,b3", "cause:NotResponding/silent/group=": "a2"}},
		{"one silent blade alone is not a dead enclosure",
			Input{Channels: []Channel{blade("b1", 1, "enc-b", state.NotResponding)}},
			map[string]string{"cause:NotResponding/silent/group=": "b1"}},
		{"wrong passwords: one per user and group",
			Input{Channels: []Channel{
				with(ch("m1", 1, state.NotAuthenticated, state.ReasonWrongPassword), func(c *Channel) { c.Group = "rack1" }),
				with(ch("m2", 2, state.NotAuthenticated, state.ReasonWrongPassword), func(c *Channel) { c.Group = "rack1" }),
				with(ch("m3", 3, state.NotAuthenticated, state.ReasonWrongPassword), func(c *Channel) { c.Group = "rack2" }),
				with(ch("m4", 4, state.NotAuthenticated, state.ReasonWrongPassword), func(c *Channel) { c.Group = "rack1"; c.User = "ops" }),
				with(ch("m5", 5, state.NotAuthenticated, state.ReasonUnknownUser), func(c *Channel) { c.Group = "rack1" }),
			}},
			map[string]string{"cause:NotAuthenticated/wrong_password/user=admin/group=rack1": "m1,m2", "cause:NotAuthenticated/wrong_password/user=admin/group=rack2": "m3",
				"cause:NotAuthenticated/wrong_password/user=ops/group=rack1": "m4", "cause:NotAuthenticated/unknown_user/user=admin/group=rack1": "m5"}},
		{"swapped addresses: one incident for the pair; a replaced motherboard stays a cause",
			Input{Channels: []Channel{
				with(ch("x", 1, state.Invalid, state.ReasonGUIDMismatch), func(c *Channel) { c.Registered, c.GUID = guidA, strings.ToUpper(guidB) }),
				with(ch("y", 2, state.Invalid, state.ReasonGUIDMismatch), func(c *Channel) { c.Registered, c.GUID = guidB, guidA }),
				with(ch("z", 3, state.Invalid, state.ReasonGUIDMismatch), func(c *Channel) { c.Registered, c.GUID = guidC, "01234567-89ab-cdef-0123-456789abcdef" }),
			}},
			map[string]string{"swap:x+y": "x,y", "cause:Invalid/guid_mismatch/group=": "z"}},
		{"one-way: x answers with y's GUID but y is fine: not a swap",
			Input{Channels: []Channel{
				with(ch("x", 1, state.Invalid, state.ReasonGUIDMismatch), func(c *Channel) { c.Registered, c.GUID = guidA, guidB }),
				with(ch("y", 2, state.Connectable, ""), func(c *Channel) { c.Registered, c.GUID = guidB, guidB }),
			}},
			map[string]string{"cause:Invalid/guid_mismatch/group=": "x"}},
		{"conditions per group; a Connectable channel without one is no incident",
			Input{Channels: []Channel{
				with(ch("a", 1, state.Connectable, state.ReasonBusy), func(c *Channel) { c.Conditions = []state.Condition{state.Busy} }),
				with(ch("b", 2, state.Connectable, ""), func(c *Channel) { c.Conditions = []state.Condition{state.Degraded, state.Insecure} }),
				with(ch("c", 3, state.Connectable, ""), func(c *Channel) { c.Conditions = []state.Condition{state.Insecure} }),
				ch("d", 4, state.Connectable, ""),
			}},
			map[string]string{"condition:Busy/group=": "a", "condition:Degraded/group=": "b", "condition:Insecure/group=": "b,c"}},
		{"floods, correlations (an enclosure finding about a dead enclosure folds into it, one with another incident's members too), agents",
			Input{Channels: []Channel{blade("b1", 1, "enc-b", state.NotResponding), blade("b2", 2, "enc-b", state.NotResponding)},
				Flooding: []string{"m9", "m8", "m9"},
				Correlations: []Correlation{{Code: "oob.not_responding", Factor: "enclosure", Value: "enc-b", GroupSize: 2, Members: []string{"b2", "b1"}},
					{Code: "oob.timeout_flood", Factor: "subnet", Value: "10.0.0.0/24", GroupSize: 9, Members: []string{"m9", "m8"}}, // the flood's members
					{Code: "oob.degraded", Factor: "subnet", Value: "10.0.1.0/24", GroupSize: 9, Members: []string{"h9", "m8", "m9"}},
					{Code: "oob.degraded", Factor: "firmware", Value: "Dell 4.40", GroupSize: 4, Members: []string{"m8", "m9"}}},
				Agents: []Agent{{Name: "h1", State: "Up"}, {Name: "h2", State: "Down", Reason: "no_heartbeat"}, {Name: "h3", State: "Down", Reason: "no_heartbeat"},
					{Name: "h4", State: "PendingUp", Reason: "untrusted_address"}, {Name: "h5", State: "Up", Link: "Down", LinkReason: "ipv4 169.254.0.1:443: timed out"}, {Name: "h7", State: "Up", Link: "Down", LinkReason: "ipv4 169.254.0.2:443: timed out"}, {Name: "h6", State: "Up", Link: "Unknown"}}},
			map[string]string{"enclosure:enc-b": "b1,b2", "flood": "m8,m9", "correlation:oob.degraded/subnet=10.0.1.0/24": "h9,m8,m9",
				"agent:Down/no_heartbeat": "h2,h3", "agent:PendingUp/untrusted_address": "h4", "host_link:Down": "h5,h7"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Group(tc.in)
			if s := summary(got); fmt.Sprint(s) != fmt.Sprint(tc.want) {
				t.Errorf("incidents:\n got %v\nwant %v", s, tc.want)
			}
			for i, inc := range got {
				if inc.Title == "" || inc.Remedy == "" || inc.Diagnose == "" || inc.Severity == "" || len(inc.Members) == 0 {
					t.Errorf("incident %s lacks a field: %+v", inc.ID, inc)
				}
				names, group := inc.DiagTargets()
				cmd := "lightsout diag "
				if inc.Kind == KindSwap {
					cmd += "--autocorrect "
				}
				if group != "" {
					cmd += "--group " + group
				} else {
					cmd += strings.Join(names, " ")
				}
				if inc.Kind != KindAgent && inc.Kind != KindHostLink && inc.Diagnose != cmd && len(names)+len(group) > 0 {
					t.Errorf("%s: Diagnose %q, DiagTargets %v %q", inc.ID, inc.Diagnose, names, group)
				}
				if i > 0 && sevRank(got[i-1].Severity) > sevRank(inc.Severity) {
					t.Errorf("not worst first: %s (%s) after %s (%s)", inc.ID, inc.Severity, got[i-1].ID, got[i-1].Severity)
				}
			}
		})
	}
}

// A fleet finding over exactly an incident's members is told in it.
func TestGroupShares(t *testing.T) {
	got := Group(Input{Flooding: []string{"m1", "m2"}, Correlations: []Correlation{
		{Code: "oob.timeout_flood", Factor: "firmware", Value: "Dell 4.40", GroupSize: 4, Members: []string{"m2", "m1"}},
		{Code: "oob.timeout_flood", Factor: "subnet", Value: "10.0.0.0/24", GroupSize: 2, Members: []string{"m1", "m2"}},
	}})
	if len(got) != 1 || fmt.Sprint(got[0].Shares) != "[firmware Dell 4.40 (2 of 4) subnet 10.0.0.0/24 (2 of 2)]" {
		t.Errorf("%+v", got)
	}
}

func TestGroupTexts(t *testing.T) {
	var cs []Channel
	for i := range 12 {
		cs = append(cs, with(ch(fmt.Sprintf("bmc-%03d", i), int64(i+1), state.NotAuthenticated, state.ReasonWrongPassword), func(c *Channel) { c.Group = "rack1" }))
	}
	cs = append(cs, with(ch("solo", 99, state.NotAuthenticated, state.ReasonWrongPassword), func(c *Channel) { c.Group = "rack2" }))
	got := Group(Input{Channels: cs})
	if len(got) != 2 {
		t.Fatalf("want 2 incidents, got %+v", got)
	}
	big, solo := got[0], got[1]
	if want := `12 BMCs refuse the password of user "admin" in group rack1`; big.Title != want {
		t.Errorf("title %q, want %q", big.Title, want)
	}
	if !big.Since.Equal(t0.Add(time.Minute)) || big.Severity != store.SeverityCritical {
		t.Errorf("since %v severity %s: want the earliest member's since and critical", big.Since, big.Severity)
	}
	if big.Diagnose != "lightsout diag --group rack1" {
		t.Errorf("more than %d members diagnose by group: %q", MaxDiagNames, big.Diagnose)
	}
	// One machine: the remedy names its account, the diagnosis the machine.
	if !strings.Contains(solo.Remedy, "lightsout accounts set 99 ") || solo.Diagnose != "lightsout diag solo" {
		t.Errorf("remedy %q diagnose %q", solo.Remedy, solo.Diagnose)
	}
	if solo.Title != `1 BMC refuses the password of user "admin" in group rack2` {
		t.Errorf("singular title %q", solo.Title)
	}
	// Twelve: the remedy keeps its placeholder (one command per account)
	// and names the accounts, the first ten.
	if strings.Contains(big.Remedy, "accounts set 1 ") || !strings.Contains(big.Remedy, "; the accounts: 1 (bmc-000), 2 (bmc-001), ") ||
		!strings.HasSuffix(big.Remedy, ", 10 (bmc-009), and 2 more (lightsout machines list --reason wrong_password)") {
		t.Errorf("a group's remedy: %q", big.Remedy)
	}
	swap := Group(Input{Channels: []Channel{
		with(ch("x", 1, state.Invalid, state.ReasonGUIDMismatch), func(c *Channel) { c.Registered, c.GUID = guidA, guidB }),
		with(ch("y", 2, state.Invalid, state.ReasonGUIDMismatch), func(c *Channel) { c.Registered, c.GUID = guidB, guidA }),
	}})
	if len(swap) != 1 || swap[0].Diagnose != "lightsout diag --autocorrect x y" || !strings.Contains(swap[0].Remedy, "10.0.0.1, 10.0.0.2") {
		t.Errorf("swap: %+v", swap)
	}
}

func TestGroupDeterministic(t *testing.T) {
	in := Input{Channels: []Channel{
		ch("a", 1, state.NotResponding, state.ReasonSilent), ch("b", 2, state.NotResponding, state.ReasonPortRefused),
		ch("c", 3, state.NotAuthenticated, state.ReasonWrongPassword), ch("d", 4, state.NotResponding, state.ReasonSilent),
	}}
	first := Group(in)
	for range 20 {
		slices.Reverse(in.Channels)
		if got := Group(in); fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("order depends on input order:\n%v\n%v", got, first)
		}
	}
	// Worst first: the refusal (critical), then the two silent, then the port.
	var ids []string
	for _, i := range first {
		ids = append(ids, i.ID)
	}
	want := []string{"cause:NotAuthenticated/wrong_password/user=admin/group=", "cause:NotResponding/silent/group=", "cause:NotResponding/port_refused/group="}
	if !slices.Equal(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
}

func TestTracker(t *testing.T) {
	a, b := Incident{ID: "a", Members: []string{"m1"}}, Incident{ID: "b"}
	tr := Tracker{Grace: time.Minute, Hold: -1}
	ids := func(is []Incident) string {
		var s []string
		for _, i := range is {
			s = append(s, i.ID)
		}
		return strings.Join(s, ",")
	}
	steps := []struct {
		at             time.Duration
		cur            []Incident
		opened, closed string
	}{
		{0, []Incident{a}, "a", ""},
		{10 * time.Second, []Incident{a, b}, "b", ""},
		{20 * time.Second, []Incident{b}, "", ""},                                        // a gone, within grace
		{50 * time.Second, []Incident{a, b}, "", ""},                                     // a back: never closed
		{60 * time.Second, []Incident{{ID: "a", Members: []string{"m1", "m2"}}}, "", ""}, // b gone
		{119 * time.Second, nil, "", ""},                                                 // a gone
		{120 * time.Second, nil, "", "b"},
		{178 * time.Second, nil, "", ""},
		{179 * time.Second, []Incident{b}, "b", "a"}, // b opens again
	}
	for i, s := range steps {
		ch := tr.Update(t0.Add(s.at), s.cur)
		if got := ids(ch.Opened); got != s.opened {
			t.Errorf("step %d: opened %q, want %q", i, got, s.opened)
		}
		if got := ids(ch.Closed); got != s.closed {
			t.Errorf("step %d: closed %q, want %q", i, got, s.closed)
		}
		// a closes with its latest members.
		for _, c := range ch.Closed {
			if c.ID == "a" && len(c.Members) != 2 {
				t.Errorf("closed with stale members: %+v", c)
			}
		}
	}
	if got := tr.Open(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("open %v, want [b]", got)
	}
}

// A grouping that passes within Hold is never announced; one that lasts is
// opened once, at Hold.
func TestTrackerHold(t *testing.T) {
	tr := Tracker{Grace: time.Minute, Hold: 30 * time.Second}
	a, b := Incident{ID: "a"}, Incident{ID: "b"}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if ch := tr.Update(at(0), []Incident{a, b}); len(ch.Opened)+len(ch.Closed) != 0 {
		t.Fatalf("announced at once: %+v", ch)
	}
	if ch := tr.Update(at(10), []Incident{a}); len(ch.Opened)+len(ch.Closed) != 0 {
		t.Fatalf("b passed unannounced, a not yet due: %+v", ch)
	}
	if ch := tr.Update(at(30), []Incident{a, b}); len(ch.Opened) != 1 || ch.Opened[0].ID != "a" {
		t.Fatalf("a due at 30s, b started again at 30s: %+v", ch)
	}
	if ch := tr.Update(at(40), []Incident{a}); len(ch.Opened)+len(ch.Closed) != 0 || !slices.Equal(tr.Open(), []string{"a"}) {
		t.Fatalf("at 40s: %+v, open %v", ch, tr.Open())
	}
}
