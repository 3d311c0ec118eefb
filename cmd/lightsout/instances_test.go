package main

import (
	"path/filepath"
	"testing"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/store"
)

// TestInstancesCLI: `lightsout instances` lists the server that answered
// (marked *), live, with its zones; -o json gives one object per line.
func TestInstancesCLI(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	e := apitest.Start(t, apitest.Options{Configure: func(c *server.Config) {
		c.Cluster = cluster.Config{Name: "cli-1", Zones: []string{"dc1"}}
	}})
	out, code, err := as(t, e, store.RoleViewer, "instances")
	wantExit(t, "instances", out, code, err, 0, "NAME", "cli-1 *", "live", "dc1")
	out, code, err = as(t, e, store.RoleViewer, "instances", "-o", "json")
	wantExit(t, "instances -o json", out, code, err, 0, `"name":"cli-1"`, `"live":true`)
}

// TestServerClusterFlags: bad scale-out flags are refused naming the flag,
// before anything starts.
func TestServerClusterFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--zone", "a b"}, "--zone"},
		{[]string{"--name", "x,y"}, "--name"},
		{[]string{"--lease", "1s"}, "--lease"},
		{[]string{"--source-address", "eth0"}, "--source-address"},
		{[]string{"--peer-address", "nohost"}, "--peer-address"},
	} {
		args := append([]string{"server", "--data", filepath.Join(dir, "d")}, tc.args...)
		out, code, err := runCLI(t, args...)
		wantExit(t, tc.want, out, code, err, 2, tc.want)
	}
}
