package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/diag/gather"
	"github.com/lightsout/lightsout/internal/manager"
)

// A diagnosis as it happens: POST /machines/NAME/diagnose/stream (the
// Diagnose form's fields) and POST /incidents/diagnose/stream (an
// incident's "Diagnose now") answer newline-delimited JSON, one line per
// event, each flushed as it happens (static/diag.js reads them with fetch):
//
//	{"kind":"step","step":0,"need":"","done":false,"text":"…","ms":0,…}
//	{"kind":"step",…,"done":true,"ms":4012}       the step ended
//	{"kind":"channel","channel_machine":"…","cause":"…","ms":…}   one channel diagnosed
//	{"kind":"result","html":"…"}                   the diagnosis section, as the page renders it
//	{"kind":"error","message":"…"}                 the diagnosis failed after the stream began
//
// A request refused before anything ran (role, CSRF, unknown machine) gets
// the console's error page and status instead; the script then posts the
// form the ordinary way, which shows it.

// streamLine is one line of the stream.
type streamLine struct {
	Kind string `json:"kind"`
	*gather.Progress
	Text      string `json:"text,omitempty"`
	MS        int64  `json:"ms"`
	Cause     string `json:"cause,omitempty"`
	HTML      string `json:"html,omitempty"`
	Message   string `json:"message,omitempty"`
	ChMachine string `json:"channel_machine,omitempty"`
}

// stepText says what a diagnosis step does, in the operator's words.
func stepText(n diag.Need) string {
	switch n {
	case "":
		return "checking the channel afresh (presence ping, login, identity)"
	case diag.NeedEM:
		return "pinging the enclosure manager"
	case diag.NeedSiblings:
		return "pinging the other blades' BMCs"
	case diag.NeedBladeView:
		return "asking the enclosure manager about this blade"
	case diag.NeedIdentify:
		return "lighting the identify lamp through the enclosure manager and reading it back"
	case diag.NeedOldAddress:
		return "trying the address before the last edit"
	case diag.NeedSubnet:
		return "looking at the other machines on the same subnet"
	case diag.NeedOwner:
		return "finding which machine owns the GUID that answered"
	case diag.NeedSwapCheck:
		return "checking what answers at that machine's address"
	case diag.NeedSuites:
		return "asking which cipher suites the BMC offers"
	case diag.NeedSuiteTry:
		return "trying a login with another cipher suite"
	case diag.NeedSessions:
		return "reading the BMC's session table"
	case diag.NeedRates:
		return "measuring the timeout and retry rates"
	case diag.NeedFleet:
		return "looking at how the condition spreads over the fleet"
	case diag.NeedPrivilege:
		return "finding the highest privilege a login gets"
	case diag.NeedLoss:
		return "sampling the loss of session-less requests"
	}
	return string(n)
}

func (c *Console) diagnoseStream(w http.ResponseWriter, r *http.Request, s *session) error {
	auto := r.PostForm.Get("autocorrect") == "yes"
	if auto && !s.Admin() {
		return &httpError{http.StatusForbidden, "Autocorrect from the console needs role admin; you are " + s.Name + " (" + string(s.Role) + ")."}
	}
	req := manager.DiagRequest{Machines: []string{r.PathValue("name")}, Autocorrect: auto}
	return c.streamDiagnosis(w, r, s, req, func(res []manager.DiagResult) (string, error) {
		if auto {
			c.invalidateRows()
		}
		var buf bytes.Buffer
		err := c.pages["machine"].ExecuteTemplate(&buf, "diagnosis", struct {
			Diag      []manager.DiagResult
			Autofixed bool
		}{res, auto})
		return buf.String(), err
	})
}

// diagnoseIncidentStream is POST /incidents/diagnose/stream (id): an
// incident's diagnosis (no autocorrect) as it happens.
func (c *Console) diagnoseIncidentStream(w http.ResponseWriter, r *http.Request, s *session) error {
	d, err := c.openIncident(r)
	if err != nil {
		return err
	}
	return c.streamDiagnosis(w, r, s, manager.DiagRequest{Machines: d.Names, Group: d.Group}, func(res []manager.DiagResult) (string, error) {
		d.setDiag(res)
		var buf bytes.Buffer
		err := c.pages["incident"].ExecuteTemplate(&buf, "incidentDiagnosis", d)
		return buf.String(), err
	})
}

// streamDiagnosis runs req, streaming its steps, then the results as
// render makes them. An error before the first line is returned (the
// error page); after it, it is the stream's last line.
func (c *Console) streamDiagnosis(w http.ResponseWriter, r *http.Request, s *session, req manager.DiagRequest, render func([]manager.DiagResult) (string, error)) error {
	fl, _ := w.(http.Flusher)
	start := time.Now()
	var mu sync.Mutex
	began := false
	send := func(l streamLine) {
		mu.Lock()
		defer mu.Unlock()
		if !began {
			began = true
			h := w.Header()
			h.Set("Content-Type", "application/x-ndjson")
			h.Set("Cache-Control", "no-store")
			h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold the lines
			w.WriteHeader(http.StatusOK)
		}
		l.MS = time.Since(start).Milliseconds()
		b, _ := json.Marshal(l)
		_, _ = w.Write(append(b, '\n'))
		if fl != nil {
			fl.Flush()
		}
	}
	ctx, cancel := ctxTimeout(r, 5*time.Minute)
	defer cancel()
	ctx = gather.WithProgress(ctx, func(p gather.Progress) {
		send(streamLine{Kind: "step", Progress: &p, Text: stepText(p.Need)})
	})
	res, err := c.m.Diagnose(ctx, s.actor(), req, func(d manager.DiagResult) {
		send(streamLine{Kind: "channel", ChMachine: d.Machine, Cause: string(d.Diagnosis.Cause), Message: d.Error})
	})
	if err != nil {
		mu.Lock()
		early := !began
		mu.Unlock()
		if early {
			return err
		}
		send(streamLine{Kind: "error", Message: err.Error()})
		return nil
	}
	html, err := render(res)
	if err != nil {
		c.log.Error("console: render diagnosis", "err", err)
		send(streamLine{Kind: "error", Message: "the diagnosis could not be rendered; reload the page"})
		return nil
	}
	send(streamLine{Kind: "result", HTML: html})
	return nil
}
