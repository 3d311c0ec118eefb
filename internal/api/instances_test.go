package api_test

import (
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/store"
)

// TestInstancesAPI: GET /api/v1/instances lists the server itself, live,
// with its zones and the view it published, and names which instance
// answered (viewer role; the response matches the OpenAPI document).
func TestInstancesAPI(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Configure: func(c *server.Config) {
		c.Cluster = cluster.Config{Name: "api-1", Zones: []string{"dc1", store.DefaultZone}, PeerAddress: "127.0.0.1:8623"}
	}})
	got, err := e.Client(t, store.RoleViewer).Instances(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got.Self != "api-1" || len(got.Instances) != 1 {
		t.Fatalf("instances: %+v", got)
	}
	in := got.Instances[0]
	if in.Name != "api-1" || !in.Live || len(in.Zones) != 2 || in.PeerAddress != "127.0.0.1:8623" || len(in.View) != 1 || in.View[0] != "api-1" {
		t.Errorf("instance: %+v", in)
	}
	_, m := raw(t, e, "", "GET", "/metrics", "")
	for _, want := range []string{`lightsout_instances{state="live"} 1`, "lightsout_instance_machines 0", "lightsout_instance_fenced 0"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
