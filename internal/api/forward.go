package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/store"
)

// Cluster says which instance checks a machine (*cluster.Node).
type Cluster interface {
	Name() string
	OwnerOf(machine int64, zone string) (store.Instance, bool)
	// Alone: no other instance is live (nothing to forward to).
	Alone() bool
}

// PeerHeader carries an instance's signature on a request it forwards to
// the instance that checks the machines named (docs/scale-out.md):
// "NAME;UNIX_MS;HEX(HMAC-SHA256(key, NAME;UNIX_MS;METHOD;PATH))", the key
// derived from the secret key every instance shares. The caller's own
// bearer token goes along: the owner authenticates and audits the same
// user.
const PeerHeader = "Lightsout-Peer"

// peerSkew bounds the age of a peer signature.
const peerSkew = time.Minute

func peerMAC(key []byte, name, ts, method, path string) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s;%s;%s;%s", name, ts, method, path)
	return hex.EncodeToString(m.Sum(nil))
}

func (a *API) signPeer(r *http.Request) {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	name := a.cluster.Name()
	r.Header.Set(PeerHeader, name+";"+ts+";"+peerMAC(a.peerKey, name, ts, r.Method, r.URL.Path))
}

// verifyPeer checks a forwarded request's signature.
func (a *API) verifyPeer(r *http.Request, h string) error {
	parts := strings.Split(h, ";")
	if len(parts) != 3 || len(a.peerKey) == 0 {
		return unauthorized("malformed " + PeerHeader + " header")
	}
	ms, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return unauthorized("malformed " + PeerHeader + " header")
	}
	if d := time.Since(time.UnixMilli(ms)); d > peerSkew || d < -peerSkew {
		return unauthorized(fmt.Sprintf("%s signature of %q is %v old: the instances' clocks disagree or it was replayed", PeerHeader, parts[0], d.Round(time.Second)))
	}
	want := peerMAC(a.peerKey, parts[0], parts[1], r.Method, r.URL.Path)
	if !hmac.Equal([]byte(want), []byte(parts[2])) {
		return unauthorized(fmt.Sprintf("%s signature of %q does not verify: every instance needs the same secret key (docs/scale-out.md)", PeerHeader, parts[0]))
	}
	return nil
}

type fwdKind int

const (
	fwdCheck fwdKind = iota // one JSON object {"results": [...]}
	fwdPower                // ndjson of wire.PowerLine
	fwdDiag                 // ndjson of wire.DiagLine
)

// forwarded sends the machines of a check, power or diagnosis request that
// another instance checks to that instance, and answers with its answer
// (merged with the others' when the machines are split between
// instances). done is false when this instance should handle the request
// itself (it checks every machine named, or the request came from a peer).
// The body is left readable either way.
func (a *API) forwarded(w http.ResponseWriter, r *http.Request, actor manager.Actor, kind fwdKind,
	local func(http.ResponseWriter, *http.Request, manager.Actor) error) (done bool, err error) {
	if a.cluster == nil || r.Context().Value(localPart{}) != nil {
		return false, nil
	}
	if h := r.Header.Get(PeerHeader); h != "" {
		err := a.verifyPeer(r, h)
		return err != nil, err
	}
	if a.cluster.Alone() {
		return false, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false, nil // the handler's decode reports it
	}
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return false, nil
	}
	var names []string
	var group string
	var all bool
	_ = json.Unmarshal(req["machines"], &names)
	_ = json.Unmarshal(req["group"], &group)
	_ = json.Unmarshal(req["all"], &all)
	parts, err := a.partition(r.Context(), names, group, all)
	if err != nil || len(parts) == 0 {
		return false, nil
	}
	self := a.cluster.Name()
	if _, mine := parts[self]; mine && len(parts) == 1 {
		return false, nil
	}
	owners := make([]string, 0, len(parts))
	for o := range parts {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	if len(owners) == 1 {
		// One other instance checks them all: the request as it came.
		return true, a.proxy(w, r, parts[owners[0]].peer, body)
	}
	// Split: each instance gets the machines it checks, by name.
	delete(req, "group")
	delete(req, "all")
	sub := func(p *part) []byte {
		req["machines"], _ = json.Marshal(p.names)
		b, _ := json.Marshal(req)
		return b
	}
	results := make([]partResult, len(owners))
	var wg sync.WaitGroup
	for i, o := range owners {
		p := parts[o]
		b := sub(p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o == self {
				results[i] = a.runLocal(r, actor, b, local)
			} else {
				results[i] = a.runRemote(r, p.peer, b)
			}
			results[i].owner, results[i].names = o, p.names
		}()
	}
	wg.Wait()
	return true, a.merge(w, kind, results)
}

// localPart marks this instance's own part of a split request.
type localPart struct{}

type part struct {
	peer  string
	names []string
}

// partition groups the machines a request names by the instance that
// checks them; machines of a zone no live instance serves stay with this
// instance. An unknown name is an error: this instance handles (refuses)
// the request itself.
func (a *API) partition(ctx context.Context, names []string, group string, all bool) (map[string]*part, error) {
	self := a.cluster.Name()
	var ms []store.Machine
	parts := map[string]*part{}
	add := func(owner, peer, name string) {
		p := parts[owner]
		if p == nil {
			p = &part{peer: peer}
			parts[owner] = p
		}
		if !slices.Contains(p.names, name) {
			p.names = append(p.names, name)
		}
	}
	for _, n := range names {
		m, err := a.st.Machine(ctx, n)
		if err != nil {
			// An unknown (or unreadable) name: this instance's handler
			// refuses the whole request, as it would alone, before
			// anything runs anywhere.
			return nil, err
		}
		ms = append(ms, m)
	}
	if group != "" || all {
		l, err := a.st.Machines(ctx, store.MachineFilter{Group: group}, store.Page{})
		if err != nil {
			return nil, err
		}
		ms = append(ms, l...)
	}
	for _, m := range ms {
		o, ok := a.cluster.OwnerOf(m.ID, store.ZoneOf(m))
		if !ok || o.Name == self || o.PeerAddress == "" {
			add(self, "", m.Name)
			continue
		}
		add(o.Name, o.PeerAddress, m.Name)
	}
	return parts, nil
}

type partResult struct {
	owner  string
	names  []string
	status int
	body   []byte
	err    error
}

// runLocal runs this instance's handler on a part.
func (a *API) runLocal(r *http.Request, actor manager.Actor, body []byte, h func(http.ResponseWriter, *http.Request, manager.Actor) error) partResult {
	rec := &recorder{header: http.Header{}}
	lr := r.Clone(context.WithValue(r.Context(), localPart{}, true))
	lr.Body = io.NopCloser(bytes.NewReader(body))
	lr.ContentLength = int64(len(body))
	if err := h(rec, lr, actor); err != nil {
		a.writeError(rec, lr, err)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return partResult{status: rec.status, body: rec.buf.Bytes()}
}

// peerClient forwards to the other instances: no overall timeout (power
// and diagnoses stream), a bounded connection set-up.
var peerClient = &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 10 * time.Minute, MaxIdleConnsPerHost: 8}}

func (a *API) remoteRequest(r *http.Request, peer string, body []byte) (*http.Request, error) {
	fr, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+peer+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	fr.Header.Set("Authorization", r.Header.Get("Authorization"))
	fr.Header.Set("Content-Type", "application/json")
	a.signPeer(fr)
	return fr, nil
}

func (a *API) runRemote(r *http.Request, peer string, body []byte) partResult {
	fr, err := a.remoteRequest(r, peer, body)
	if err != nil {
		return partResult{err: err}
	}
	resp, err := peerClient.Do(fr)
	if err != nil {
		return partResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return partResult{status: resp.StatusCode, body: b, err: err}
}

// errOwnerGone: the instance that checks a machine did not answer.
var errOwnerGone = errors.New("the instance that checks these machines did not answer")

func ownerGone(owner string, err error) error {
	return &apiError{status: http.StatusServiceUnavailable, code: wire.CodeUnavailable,
		msg: fmt.Sprintf("%v (%s: %v); its machines move to another instance once its lease lapses: retry then", errOwnerGone, owner, err)}
}

// proxy streams the owner's answer to the whole request back.
func (a *API) proxy(w http.ResponseWriter, r *http.Request, peer string, body []byte) error {
	fr, err := a.remoteRequest(r, peer, body)
	if err != nil {
		return err
	}
	resp, err := peerClient.Do(fr)
	if err != nil {
		return ownerGone(peer, err)
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After", "X-Accel-Buffering"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			_ = rc.Flush()
		}
		if err != nil {
			return nil
		}
	}
}

// merge writes the parts' answers as one. A part refused as a whole (not
// 200) is the answer when it is the only one that failed before anything
// ran elsewhere; otherwise its machines are reported failed with its
// reason.
func (a *API) merge(w http.ResponseWriter, kind fwdKind, res []partResult) error {
	for _, p := range res {
		if p.err == nil && p.status != http.StatusOK && p.status < 500 {
			// A refusal (bad input, forbidden, unknown machine): every
			// part was refused alike by the same rules, so answer it.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(p.status)
			_, _ = w.Write(p.body)
			return nil
		}
	}
	why := func(p partResult) string {
		if p.err != nil {
			return ownerGone(p.owner, p.err).Error()
		}
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(p.body, &e)
		return fmt.Sprintf("instance %s answered %d: %s", p.owner, p.status, e.Error.Message)
	}
	switch kind {
	case fwdCheck:
		var all []json.RawMessage
		for _, p := range res {
			if p.err != nil || p.status != http.StatusOK {
				for _, n := range p.names {
					b, _ := json.Marshal(map[string]string{"machine": n, "error": why(p)})
					all = append(all, b)
				}
				continue
			}
			var cr struct {
				Results []json.RawMessage `json:"results"`
			}
			_ = json.Unmarshal(p.body, &cr)
			all = append(all, cr.Results...)
		}
		if all == nil {
			all = []json.RawMessage{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"results": all})
		return nil
	case fwdPower:
		var sum wire.PowerSummary
		return a.writeMerged(w, res, why, lineMerge{
			add: func(line []byte) bool {
				var pl wire.PowerLine
				if json.Unmarshal(line, &pl) != nil || pl.Result == nil {
					return false
				}
				sum.Add(*pl.Result)
				return true
			},
			failed: func(machine, why string) []byte {
				r := power.Result{Machine: machine, Result: "failed", Message: why}
				sum.Add(r)
				b, _ := json.Marshal(wire.PowerLine{Result: &r})
				return b
			},
			summary: func() []byte { b, _ := json.Marshal(wire.PowerLine{Summary: &sum}); return b },
		})
	default:
		var sum manager.DiagSummary
		return a.writeMerged(w, res, why, lineMerge{
			add: func(line []byte) bool {
				var dl wire.DiagLine
				if json.Unmarshal(line, &dl) != nil || dl.DiagResult == nil {
					return false
				}
				sum.Add(*dl.DiagResult)
				return true
			},
			failed: func(machine, why string) []byte {
				r := manager.DiagResult{Machine: machine, Error: why}
				sum.Add(r)
				b, _ := json.Marshal(wire.DiagLine{DiagResult: &r})
				return b
			},
			summary: func() []byte { b, _ := json.Marshal(wire.DiagLine{Summary: &sum}); return b },
		})
	}
}

// lineMerge is how one streamed operation's NDJSON answers are merged:
// add counts a result line into the summary (false: not a result line),
// failed makes (and counts) the failed line of a machine whose owner did
// not answer, summary is the last line.
type lineMerge struct {
	add     func(line []byte) bool
	failed  func(machine, why string) []byte
	summary func() []byte
}

// writeMerged writes the owners' answers as one NDJSON stream: each
// owner's result lines, a failed line for every machine of an owner that
// did not answer (the caller is never left without an answer for one),
// then the summary of them all.
func (a *API) writeMerged(w http.ResponseWriter, res []partResult, why func(partResult) string, m lineMerge) error {
	var out bytes.Buffer
	for _, p := range res {
		if p.err != nil || p.status != http.StatusOK {
			a.log.Warn("api: forwarded request failed", "instance", p.owner, "machines", len(p.names), "why", why(p))
			for _, n := range p.names {
				out.Write(append(m.failed(n, why(p)), '\n'))
			}
			continue
		}
		eachLine(p.body, func(line []byte) {
			if m.add(line) {
				out.Write(append(line, '\n'))
			}
		})
	}
	out.Write(append(m.summary(), '\n'))
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
	return nil
}

func eachLine(b []byte, fn func([]byte)) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			fn(bytes.Clone(l))
		}
	}
}

// recorder is a ResponseWriter that keeps the answer (a local part).
type recorder struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.buf.Write(b)
}
func (r *recorder) Flush() {}
