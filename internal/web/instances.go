package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/store"
)

// --- instances (scale-out, docs/scale-out.md) ---

// instanceRow is one server instance as the instances page shows it.
type instanceRow struct {
	store.Instance
	Self      bool   // the instance serving this page
	ZoneList  string // "dc1, dc2"
	Age       string // heartbeat − start, rounded
	Rate      string // checks/s since it started
	Heartbeat string // "3s ago"
}

type instancesData struct {
	Rows       []instanceRow
	Live, Dead int
	Channels   int64 // owned by the live instances
}

// instanceRows builds the page's rows, as `lightsout instances` prints
// them: age is the time from start to the last heartbeat, checks/s the
// checks over that age.
func instanceRows(list []store.Instance, self string, now time.Time) instancesData {
	var d instancesData
	for _, in := range list {
		r := instanceRow{Instance: in, Self: in.Name == self, ZoneList: strings.Join(in.Zones, ", "), Rate: "—"}
		age := in.HeartbeatAt.Sub(in.StartedAt)
		r.Age = age.Round(time.Second).String()
		if age > 0 {
			r.Rate = fmt.Sprintf("%.1f", float64(in.Checks)/age.Seconds())
		}
		r.Heartbeat = ago(in.HeartbeatAt)
		if in.Live {
			d.Live++
			d.Channels += in.Channels
		} else {
			d.Dead++
		}
		d.Rows = append(d.Rows, r)
	}
	return d
}

// instances: GET /instances, the server instances sharing the database
// (`lightsout instances`, GET /api/v1/instances).
func (c *Console) instances(w http.ResponseWriter, r *http.Request, s *session) error {
	var list []store.Instance
	if db, ok := c.st.(interface {
		Instances(context.Context) ([]store.Instance, error)
	}); ok {
		var err error
		if list, err = db.Instances(r.Context()); err != nil {
			return err
		}
	}
	c.render(w, http.StatusOK, "instances", pageData{Title: "Instances", Nav: "instances", S: s, Data: instanceRows(list, c.self, time.Now())})
	return nil
}
