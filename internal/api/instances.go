package api

import (
	"context"
	"net/http"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

// listInstances: GET /api/v1/instances.
func (a *API) listInstances(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	db, ok := a.st.(interface {
		Instances(ctx context.Context) ([]store.Instance, error)
	})
	if !ok {
		writeJSON(w, http.StatusOK, wire.Instances{Self: a.self, Instances: []store.Instance{}})
		return nil
	}
	l, err := db.Instances(r.Context())
	if err != nil {
		return err
	}
	if l == nil {
		l = []store.Instance{}
	}
	writeJSON(w, http.StatusOK, wire.Instances{Self: a.self, Instances: l})
	return nil
}
