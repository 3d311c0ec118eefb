package web

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// States is the order the console shows OOB states in.
var States = []state.OOB{state.Connectable, state.NotResponding, state.NotAuthenticated, state.Invalid, state.Unknown}

// stateRank orders states worst first for sorting.
func stateRank(s state.OOB) int {
	switch s {
	case state.Invalid:
		return 0
	case state.NotAuthenticated:
		return 1
	case state.NotResponding:
		return 2
	case state.Unknown:
		return 3
	case state.Connectable:
		return 4
	}
	return 5 // no channel
}

// --- overview ---

type stateCount struct {
	State state.OOB
	N     int
}

type overviewData struct {
	Summary   manager.Summary
	Counts    []stateCount
	Incidents []incident.Incident
	// Conditions counts machines by condition (any channel).
	Conditions []condCount
}

type condCount struct {
	Condition state.Condition
	N         int
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	sum, err := c.m.Summarize(r.Context())
	if err != nil {
		return err
	}
	incs, err := c.m.Incidents(r.Context())
	if err != nil {
		return err
	}
	d := overviewData{Summary: sum, Incidents: incs}
	for _, st := range States {
		d.Counts = append(d.Counts, stateCount{st, sum.OOB[st]})
	}
	rs, err := c.rowsNow(r)
	if err != nil {
		return err
	}
	for _, cond := range state.Conditions {
		n := 0
		for _, rw := range rs.rows {
			if slices.Contains(rw.Conditions, cond) {
				n++
			}
		}
		d.Conditions = append(d.Conditions, condCount{cond, n})
	}
	c.render(w, http.StatusOK, "overview", pageData{Title: "Fleet", Nav: "overview", S: s, Data: d})
	return nil
}

// MaxIncidentMembers is how many members an incident names on the
// overview before "and N more".
const MaxIncidentMembers = 20

type memberLink struct {
	Name string
	More int // > 0: the "and N more" entry
}

func members(ms []string) []memberLink {
	out := make([]memberLink, 0, min(len(ms), MaxIncidentMembers)+1)
	for i, m := range ms {
		if i == MaxIncidentMembers {
			out = append(out, memberLink{More: len(ms) - i})
			break
		}
		out = append(out, memberLink{Name: m})
	}
	return out
}

// diagnoseIncident serves POST /incidents/diagnose (id): the diagnosis the
// incident names, run now on its machines (no autocorrect), on a page of
// its own.
func (c *Console) diagnoseIncident(w http.ResponseWriter, r *http.Request, s *session) error {
	d, err := c.openIncident(r)
	if err != nil {
		return err
	}
	ctx, cancel := ctxTimeout(r, 5*time.Minute)
	defer cancel()
	res, err := c.m.Diagnose(ctx, s.actor(), manager.DiagRequest{Machines: d.Names, Group: d.Group}, nil)
	if err != nil {
		return err
	}
	d.setDiag(res)
	c.render(w, http.StatusOK, "incident", pageData{Title: "Incident", Nav: "overview", S: s, Data: d})
	return nil
}

// incidentDiag is an incident's diagnosis: the incident, what it
// diagnoses, the results.
type incidentDiag struct {
	Inc   incident.Incident
	Names []string
	Group string
	Diag  []manager.DiagResult
	Sum   manager.DiagSummary
}

func (d *incidentDiag) setDiag(res []manager.DiagResult) {
	d.Diag = res
	for _, x := range res {
		d.Sum.Add(x)
	}
}

// openIncident finds the open incident the form names (id) and what its
// diagnosis runs on.
func (c *Console) openIncident(r *http.Request) (*incidentDiag, error) {
	id := r.PostForm.Get("id")
	incs, err := c.m.Incidents(r.Context())
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(incs, func(inc incident.Incident) bool { return inc.ID == id })
	if i < 0 {
		return nil, &httpError{http.StatusNotFound, fmt.Sprintf("No incident %q is open now: it may have closed since the page was drawn.", id)}
	}
	inc := incs[i]
	names, group := inc.DiagTargets()
	if len(names) == 0 && group == "" {
		return nil, &httpError{http.StatusBadRequest, "This incident is about agents: diagnose each on the agents page (lightsout diag --agent NAME)."}
	}
	return &incidentDiag{Inc: inc, Names: names, Group: group}, nil
}

// --- machine table ---

// row is one machine in the table: its worst channel's state.
type row struct {
	Name, Group, Enclosure string
	Slot                   int
	State                  state.OOB // "" without a channel
	Reason                 state.Reason
	Since                  time.Time
	Power                  string
	Channels               int
	// Conditions of any channel (Busy, Degraded, Insecure), in
	// state.Conditions order.
	Conditions []state.Condition
	// Stale: no live instance serves the machine's zone; the state is
	// as of then (docs/scale-out.md).
	Stale  *time.Time
	mv     manager.MachineView
	search string
}

type rowSet struct {
	at         time.Time
	rows       []row
	groups     []string
	enclosures []string
	zones      []string
}

// rowsNow returns the table's rows, rebuilt from the manager when older
// than RowsTTL.
func (c *Console) rowsNow(r *http.Request) (*rowSet, error) {
	c.rowsMu.Lock()
	defer c.rowsMu.Unlock()
	if c.rows != nil && time.Since(c.rows.at) < RowsTTL {
		return c.rows, nil
	}
	ms, err := c.m.Machines(r.Context(), store.MachineFilter{}, store.Page{})
	if err != nil {
		return nil, err
	}
	rs := &rowSet{at: time.Now(), rows: make([]row, 0, len(ms))}
	groups, encs, zones := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, mv := range ms {
		rw := row{Name: mv.Name, Group: mv.Group, Enclosure: mv.Enclosure, Slot: mv.Slot, Channels: len(mv.Channels), mv: mv}
		for _, c := range state.Conditions {
			if slices.ContainsFunc(mv.Channels, func(ch manager.ChannelView) bool { return slices.Contains(ch.State.Conditions, c) }) {
				rw.Conditions = append(rw.Conditions, c)
			}
		}
		for i, ch := range mv.Channels {
			if i == 0 || stateRank(ch.State.State) < stateRank(rw.State) {
				rw.State, rw.Reason, rw.Since = ch.State.State, ch.State.Reason, ch.State.Since
			}
			if ch.State.Power != "" {
				rw.Power = ch.State.Power
			}
			if ch.StaleSince != nil {
				rw.Stale = ch.StaleSince
			}
		}
		var sb strings.Builder
		sb.WriteString(strings.ToLower(mv.Name + " " + mv.Group + " " + mv.Enclosure + " " + mv.Role + " " + strings.Join(mv.Tags, " ")))
		for _, ch := range mv.Channels {
			sb.WriteString(" " + strings.ToLower(ch.Account.Address))
		}
		rw.search = sb.String()
		if mv.Group != "" {
			groups[mv.Group] = true
		}
		if mv.Enclosure != "" {
			encs[mv.Enclosure] = true
		}
		zones[manager.ZoneOf(mv.Machine)] = true
		rs.rows = append(rs.rows, rw)
	}
	for g := range groups {
		rs.groups = append(rs.groups, g)
	}
	slices.Sort(rs.groups)
	for e := range encs {
		rs.enclosures = append(rs.enclosures, e)
	}
	slices.Sort(rs.enclosures)
	for z := range zones {
		rs.zones = append(rs.zones, z)
	}
	slices.Sort(rs.zones)
	c.rows = rs
	return rs, nil
}

type sortLink struct {
	Label, Href string
	Active      string // "↑", "↓" or ""
}

type machinesData struct {
	Rows                []row
	Total, Page, Pages  int
	First, Last         int
	State, Q, Group     string
	Reason, Condition   string
	Enclosure, Zone     string
	Sort                string
	Prev, Next          string
	Groups, Enclosures  []string
	Zones               []string
	States              []state.OOB
	Reasons             []state.Reason
	Conditions          []state.Condition
	SortName, SortState sortLink
	SortSince           sortLink
}

// allReasons is every reason, by state in the console's order.
func allReasons() []state.Reason {
	var out []state.Reason
	rs := state.Reasons()
	for _, st := range States {
		out = append(out, rs[st]...)
	}
	return out
}

func (c *Console) machines(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := machinesData{State: q.Get("state"), Q: strings.TrimSpace(q.Get("q")), Group: q.Get("group"), Sort: q.Get("sort"),
		Reason: q.Get("reason"), Condition: q.Get("condition"), Enclosure: q.Get("enclosure"), Zone: q.Get("zone"),
		States: States, Reasons: allReasons(), Conditions: state.Conditions}
	vf := manager.ViewFilter{State: state.OOB(d.State), Reason: state.Reason(d.Reason), Condition: state.Condition(d.Condition), Enclosure: d.Enclosure, Zone: d.Zone}
	if err := vf.Check(); err != nil {
		var fe *store.FieldError
		if errors.As(err, &fe) {
			return &httpError{http.StatusBadRequest, fe.Field + ": " + fe.Reason + "."}
		}
		return err
	}
	switch d.Sort {
	case "", "name", "-name", "state", "-state", "since", "-since":
	default:
		return &httpError{http.StatusBadRequest, fmt.Sprintf("%q is not a sort order (name, state, since; - before one reverses it)", d.Sort)}
	}
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Page = max(d.Page, 1)
	rs, err := c.rowsNow(r)
	if err != nil {
		return err
	}
	d.Groups, d.Enclosures, d.Zones = rs.groups, rs.enclosures, rs.zones
	needle := strings.ToLower(d.Q)
	var sel []row
	for _, rw := range rs.rows {
		if !vf.Match(rw.mv) {
			continue
		}
		if d.Group != "" && rw.Group != d.Group {
			continue
		}
		if needle != "" && !strings.Contains(rw.search, needle) {
			continue
		}
		sel = append(sel, rw)
	}
	key, desc := strings.CutPrefix(d.Sort, "-")
	switch key {
	case "state":
		slices.SortStableFunc(sel, func(a, b row) int {
			return cmp.Or(cmp.Compare(stateRank(a.State), stateRank(b.State)), strings.Compare(a.Name, b.Name))
		})
	case "since":
		slices.SortStableFunc(sel, func(a, b row) int {
			return cmp.Or(b.Since.Compare(a.Since), strings.Compare(a.Name, b.Name)) // newest first
		})
	default:
		slices.SortStableFunc(sel, func(a, b row) int { return strings.Compare(a.Name, b.Name) })
	}
	if desc {
		slices.Reverse(sel)
	}
	d.Total = len(sel)
	d.Pages = max((d.Total+PageSize-1)/PageSize, 1)
	d.Page = min(d.Page, d.Pages)
	from := (d.Page - 1) * PageSize
	to := min(from+PageSize, d.Total)
	d.Rows = sel[from:to]
	d.First, d.Last = from+1, to
	if d.Total == 0 {
		d.First = 0
	}
	link := func(page int, sort string) string {
		v := url.Values{}
		for k, x := range map[string]string{"state": d.State, "q": d.Q, "group": d.Group, "sort": sort,
			"reason": d.Reason, "condition": d.Condition, "enclosure": d.Enclosure, "zone": d.Zone} {
			if x != "" {
				v.Set(k, x)
			}
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		if len(v) == 0 {
			return "/machines"
		}
		return "/machines?" + v.Encode()
	}
	if d.Page > 1 {
		d.Prev = link(d.Page-1, d.Sort)
	}
	if d.Page < d.Pages {
		d.Next = link(d.Page+1, d.Sort)
	}
	sl := func(label, k string) sortLink {
		l := sortLink{Label: label, Href: link(1, k)}
		if key == k || (key == "" && k == "name") {
			l.Active = "↑"
			if desc {
				l.Active = "↓"
			} else {
				l.Href = link(1, "-"+k)
			}
		}
		return l
	}
	d.SortName, d.SortState, d.SortSince = sl("Name", "name"), sl("State", "state"), sl("Since", "since")
	c.render(w, http.StatusOK, "machines", pageData{Title: "Machines", Nav: "machines", S: s, Data: d})
	return nil
}

// --- one machine ---

type machineData struct {
	M         manager.MachineView
	History   []store.Transition
	Checks    []manager.CheckResult
	Power     []power.Result
	Diag      []manager.DiagResult
	Confirm   string // a power action awaiting confirmation
	Actions   []powerAction
	Autofixed bool
	// Refused is why power and identify would be refused now
	// (manager.PowerGate): the page shows it, with its remedy, in place
	// of the buttons.
	Refused *power.RefusedError
}

type powerAction struct {
	Action power.Action
	Label  string
	Danger bool
}

var powerActions = []powerAction{
	{power.On, "Power on", false},
	{power.Off, "Power off", true},
	{power.Cycle, "Power cycle", true},
	{power.Reset, "Reset", true},
	{power.SoftOff, "Soft off (ACPI)", true},
	{power.IdentifyOn, "Identify on", false},
	{power.IdentifyOff, "Identify off", false},
}

func (c *Console) machineData(r *http.Request) (machineData, error) {
	name := r.PathValue("name")
	mv, err := c.m.Machine(r.Context(), name)
	if err != nil {
		return machineData{}, err
	}
	h, err := c.m.History(r.Context(), name, 0, 50)
	if err != nil {
		return machineData{}, err
	}
	d := machineData{M: mv, History: h, Actions: powerActions}
	if err := manager.PowerGate(mv); err != nil && !errors.As(err, &d.Refused) {
		return machineData{}, err
	}
	return d, nil
}

func (c *Console) machine(w http.ResponseWriter, r *http.Request, s *session) error {
	d, err := c.machineData(r)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "machine", pageData{Title: d.M.Name, Nav: "machines", S: s, Data: d})
	return nil
}

// liveChannel is one channel's state as the machine page's script updates
// it in place.
type liveChannel struct {
	AccountID int64     `json:"account_id"`
	State     state.OOB `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Power     string    `json:"power"`
	Since     string    `json:"since"`
	SinceAgo  string    `json:"since_ago"`
	Checked   string    `json:"checked"`
}

// machineLive serves GET /machines/{name}/live: the machine's channel
// states as JSON, which the machine page fetches on each live event about
// the machine (authenticated by the session cookie, like the page).
func (c *Console) machineLive(w http.ResponseWriter, r *http.Request, _ *session) error {
	mv, err := c.m.Machine(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	out := struct {
		Machine  string        `json:"machine"`
		Channels []liveChannel `json:"channels"`
	}{Machine: mv.Name, Channels: []liveChannel{}}
	for _, ch := range mv.Channels {
		out.Channels = append(out.Channels, liveChannel{AccountID: ch.Account.ID, State: ch.State.State,
			Reason: string(ch.State.Reason), Power: powerOr(ch.State.Power),
			Since: ts(ch.State.Since), SinceAgo: ago(ch.State.Since), Checked: ago(ch.State.CheckedAt)})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
	return nil
}

func powerOr(p string) string {
	if p == "" {
		return "unknown"
	}
	return p
}

func (c *Console) checkNow(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := ctxTimeout(r, 2*time.Minute)
	defer cancel()
	res, err := c.m.CheckNow(ctx, s.actor(), []string{r.PathValue("name")}, "")
	if err != nil {
		return err
	}
	d, err := c.machineData(r)
	if err != nil {
		return err
	}
	d.Checks = res
	c.invalidateRows()
	c.render(w, http.StatusOK, "machine", pageData{Title: d.M.Name, Nav: "machines", S: s, Notice: "Checked now.", Data: d})
	return nil
}

func parseAction(s string) (power.Action, error) {
	for _, a := range powerActions {
		if string(a.Action) == s {
			return a.Action, nil
		}
	}
	return "", &httpError{http.StatusBadRequest, fmt.Sprintf("%q is not a power action (on, off, cycle, reset, soft, identify-on, identify-off)", s)}
}

func (c *Console) powerConfirm(w http.ResponseWriter, r *http.Request, s *session) error {
	a, err := parseAction(r.URL.Query().Get("action"))
	if err != nil {
		return err
	}
	d, err := c.machineData(r)
	if err != nil {
		return err
	}
	if d.Refused != nil && !a.ReadOnly() {
		// No confirmation for what would be refused: the refusal and its
		// remedy are on the page instead.
		c.render(w, http.StatusConflict, "machine", pageData{Title: d.M.Name, Nav: "machines", S: s, Data: d,
			Error: "power " + string(a) + " would be refused: " + d.Refused.Error()})
		return nil
	}
	d.Confirm = string(a)
	c.render(w, http.StatusOK, "machine", pageData{Title: d.M.Name, Nav: "machines", S: s, Data: d})
	return nil
}

func (c *Console) power(w http.ResponseWriter, r *http.Request, s *session) error {
	a, err := parseAction(r.PostForm.Get("action"))
	if err != nil {
		return err
	}
	if r.PostForm.Get("confirm") != "yes" {
		return &httpError{http.StatusBadRequest, "Power actions need confirmation: use the machine page's buttons."}
	}
	ctx, cancel := ctxTimeout(r, 2*time.Minute)
	defer cancel()
	res, err := c.m.Power(ctx, s.actor(), manager.PowerRequest{Action: a, Machines: []string{r.PathValue("name")}}, nil)
	if err != nil {
		return err
	}
	d, err := c.machineData(r)
	if err != nil {
		return err
	}
	d.Power = res
	c.render(w, http.StatusOK, "machine", pageData{Title: d.M.Name, Nav: "machines", S: s, Data: d})
	return nil
}

func (c *Console) diagnose(w http.ResponseWriter, r *http.Request, s *session) error {
	auto := r.PostForm.Get("autocorrect") == "yes"
	if auto && !s.Admin() {
		return &httpError{http.StatusForbidden, "Autocorrect from the console needs role admin; you are " + s.Name + " (" + string(s.Role) + ")."}
	}
	ctx, cancel := ctxTimeout(r, 5*time.Minute)
	defer cancel()
	res, err := c.m.Diagnose(ctx, s.actor(), manager.DiagRequest{Machines: []string{r.PathValue("name")}, Autocorrect: auto}, nil)
	if err != nil {
		return err
	}
	d, err := c.machineData(r)
	if err != nil {
		return err
	}
	d.Diag, d.Autofixed = res, auto
	if auto {
		c.invalidateRows()
	}
	c.render(w, http.StatusOK, "machine", pageData{Title: d.M.Name, Nav: "machines", S: s, Data: d})
	return nil
}

func (c *Console) invalidateRows() {
	c.rowsMu.Lock()
	c.rows = nil
	c.rowsMu.Unlock()
}

// --- events ---

// eventsFilter reads the events page's filters from the URL: severity
// (the least; default warning, so the info rows of a start are hidden),
// code (one, or a family "audit.*"), source, since (a duration back from
// now — 30m, 2h, 7d — or an RFC 3339 time).
func eventsFilter(q url.Values, now time.Time) (store.EventFilter, error) {
	f := store.EventFilter{MinSeverity: store.SeverityWarning, Code: strings.TrimSpace(q.Get("code")), Source: strings.TrimSpace(q.Get("source"))}
	if v := q.Get("severity"); v != "" {
		sev, err := store.ParseSeverity(v)
		if err != nil {
			return f, &httpError{http.StatusBadRequest, "severity: " + err.Error() + "."}
		}
		f.MinSeverity = sev
	}
	if f.Code != "" {
		if _, known := events.Lookup(f.Code); !known && !strings.HasSuffix(f.Code, ".*") {
			return f, &httpError{http.StatusBadRequest, fmt.Sprintf("code: %q is no event code (see docs/events.md; a family is written audit.*).", f.Code)}
		}
	}
	if v := strings.TrimSpace(q.Get("since")); v != "" {
		t, err := parseSince(v, now)
		if err != nil {
			return f, &httpError{http.StatusBadRequest, "since: " + err.Error() + "."}
		}
		f.Since = t
	}
	return f, nil
}

// parseSince reads a duration back from now (90m, 2h, 7d) or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 && n <= 3650 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration back from now (30m, 2h, 7d) nor a time (2026-12-07T09:14:00Z)", s)
}

func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	f, err := eventsFilter(r.URL.Query(), time.Now())
	if err != nil {
		return err
	}
	f.Limit = 100
	evs, err := c.st.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	// Fleet findings of the last day: one line per common factor.
	findings, err := c.st.ListEvents(r.Context(), store.EventFilter{Code: "fleet.*", Since: time.Now().Add(-24 * time.Hour), Limit: 20})
	if err != nil {
		return err
	}
	q := r.URL.Query()
	stream := url.Values{"severity": {string(f.MinSeverity)}}
	for _, k := range []string{"code", "source"} {
		if v := q.Get(k); v != "" {
			stream.Set(k, v)
		}
	}
	c.render(w, http.StatusOK, "events", pageData{Title: "Events", Nav: "events", S: s, Data: struct {
		Events   []store.Event
		Findings []store.Event
		Live     bool
		Severity string
		Code     string
		Source   string
		Since    string
		Stream   string
	}{evs, findings, c.ev != nil, string(f.MinSeverity), q.Get("code"), q.Get("source"), q.Get("since"), "/events/stream?" + stream.Encode()}})
	return nil
}

// SSEKeepalive is how often an idle event stream sends a comment.
var SSEKeepalive = 15 * time.Second

// eventStream serves GET /events/stream: the live events as Server-Sent
// Events, one JSON Event per message (the API stream's format), for the
// events page's script, authenticated by the session cookie.
//
// ?source=NAME keeps one source's events (the machine page's).
func (c *Console) eventStream(w http.ResponseWriter, r *http.Request, _ *session) error {
	if c.ev == nil {
		return &httpError{http.StatusServiceUnavailable, "This server has no live event stream."}
	}
	q := r.URL.Query()
	f := store.EventFilter{Source: q.Get("source"), Code: q.Get("code")}
	if v := q.Get("severity"); v != "" {
		sev, err := store.ParseSeverity(v)
		if err != nil {
			return &httpError{http.StatusBadRequest, "severity: " + err.Error() + "."}
		}
		f.MinSeverity = sev
	}
	sub := c.ev.Subscribe(f, 0)
	defer sub.Close()
	events.ServeSSE(r.Context(), w, sub, events.SSEStream{Comment: "lightsout console events", Keepalive: SSEKeepalive})
	return nil
}

// --- enclosures ---

func (c *Console) enclosures(w http.ResponseWriter, r *http.Request, s *session) error {
	es, err := c.st.Enclosures(r.Context())
	if err != nil {
		return err
	}
	rs, err := c.rowsNow(r)
	if err != nil {
		return err
	}
	blades := map[string][]row{}
	for _, rw := range rs.rows {
		if rw.Enclosure != "" {
			blades[rw.Enclosure] = append(blades[rw.Enclosure], rw)
		}
	}
	out := make([]enclosureHealth, 0, len(es))
	for _, e := range es {
		e.Password = nil
		h := enclosureHealth{E: e, Blades: len(blades[e.Name]), Verdict: isolate(blades[e.Name])}
		for _, b := range blades[e.Name] {
			switch b.State {
			case state.Connectable:
				h.Up++
			case state.NotResponding:
				h.Silent++
			default:
				h.Other++
			}
		}
		out = append(out, h)
	}
	c.render(w, http.StatusOK, "enclosures", pageData{Title: "Enclosures", Nav: "enclosures", S: s, Data: out})
	return nil
}

// enclosureHealth is one row of the enclosures page: its blades by state
// (each blade's worst channel) and the isolation verdict.
type enclosureHealth struct {
	E                 store.Enclosure
	Blades            int
	Up, Silent, Other int
	Verdict           Verdict
}

type slotCell struct {
	Slot     int
	Machines []row
}

func (c *Console) enclosure(w http.ResponseWriter, r *http.Request, s *session) error {
	e, err := c.st.Enclosure(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	e.Password = nil
	rs, err := c.rowsNow(r)
	if err != nil {
		return err
	}
	n := e.Slots
	var loose []row
	bySlot := map[int][]row{}
	for _, rw := range rs.rows {
		if rw.Enclosure != e.Name {
			continue
		}
		if rw.Slot >= 1 && (n == 0 || rw.Slot <= n) {
			bySlot[rw.Slot] = append(bySlot[rw.Slot], rw)
			n = max(n, rw.Slot)
		} else {
			loose = append(loose, rw)
		}
	}
	cells := make([]slotCell, 0, n)
	for i := 1; i <= n; i++ {
		cells = append(cells, slotCell{Slot: i, Machines: bySlot[i]})
	}
	var blades []row
	for _, cell := range cells {
		blades = append(blades, cell.Machines...)
	}
	blades = append(blades, loose...)
	c.render(w, http.StatusOK, "enclosure", pageData{Title: e.Name, Nav: "enclosures", S: s, Data: struct {
		E       store.Enclosure
		Cells   []slotCell
		Loose   []row
		Verdict Verdict
	}{e, cells, loose, isolate(blades)}})
	return nil
}

// --- template functions ---

func compactJSON(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

func prettyJSON(b json.RawMessage) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
}

// ago is how long ago t was, for people ("—" for never).
func ago(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return t.Local().Format("2006-01-02 15:04")
}

// ts is t as a local timestamp ("" for never).
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

var funcs = map[string]any{
	"ago": ago,
	"ts":  ts,
	"compact": func(b json.RawMessage) string {
		s := compactJSON(b)
		if len(s) > 160 {
			s = s[:157] + "…"
		}
		return s
	},
	"pretty":  prettyJSON,
	"whose":   func(h diag.HeldSession) string { return h.Whose() },
	"hasJSON": func(b json.RawMessage) bool { return len(b) > 0 && string(b) != "null" },
	"slot": func(enc string, slot int) string {
		if enc == "" {
			return "—"
		}
		if slot == 0 {
			return enc
		}
		return enc + " / " + strconv.Itoa(slot)
	},
	"list":    func() []string { return []string{audit.StatusInsecure, audit.StatusClean, audit.StatusNotAudited} },
	"powerOr": powerOr,
	"members": members,
	"list3":   func() []string { return []string{"info", "warning", "critical"} },
	"health": func(level string) string {
		switch level {
		case "ok":
			return "healthy"
		case "partial":
			return "some blades silent"
		case "shared":
			return "down"
		}
		return "no blades"
	},
	"diagnosable": func(i incident.Incident) bool {
		n, g := i.DiagTargets()
		return len(n) > 0 || g != ""
	},
	"spans": codeSpans,
	"stateOr": func(s state.OOB) string {
		if s == "" {
			return "none"
		}
		return string(s)
	},
}

// --- security audit ---

type securityData struct {
	Status      string
	Counts      map[string]int
	Views       []audit.View
	Total, Page int
	Pages       int
	Prev, Next  string
}

func (c *Console) security(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := securityData{Status: q.Get("status"), Counts: map[string]int{}}
	switch d.Status {
	case "":
		d.Status = audit.StatusInsecure
	case audit.StatusInsecure, audit.StatusClean, audit.StatusNotAudited, "all":
	default:
		return &httpError{http.StatusBadRequest, fmt.Sprintf("%q is not a status (insecure, clean, not_audited, all)", d.Status)}
	}
	views, err := c.m.SecurityReports(r.Context(), nil, "", 0)
	if err != nil {
		return err
	}
	var sel []audit.View
	for _, v := range views {
		d.Counts[v.Status]++
		if d.Status == "all" || v.Status == d.Status {
			v.Report = nil
			sel = append(sel, v)
		}
	}
	slices.SortStableFunc(sel, func(a, b audit.View) int { return strings.Compare(a.Machine, b.Machine) })
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Total = len(sel)
	d.Pages = max((d.Total+PageSize-1)/PageSize, 1)
	d.Page = min(max(d.Page, 1), d.Pages)
	from := (d.Page - 1) * PageSize
	d.Views = sel[from:min(from+PageSize, d.Total)]
	link := func(p int) string { return fmt.Sprintf("/security?status=%s&page=%d", url.QueryEscape(d.Status), p) }
	if d.Page > 1 {
		d.Prev = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.Next = link(d.Page + 1)
	}
	c.render(w, http.StatusOK, "security", pageData{Title: "Security audit", Nav: "security", S: s, Data: d})
	return nil
}
