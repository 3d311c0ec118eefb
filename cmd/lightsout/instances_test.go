package main

import (
	"os"
	"path/filepath"
	"regexp"
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
		{[]string{"--lease", "20s", "--timeout", "5s"}, "too short for --timeout"},
		{[]string{"--source-address", "eth0"}, "--source-address"},
		{[]string{"--source-address", "dc2=127.0.0.2"}, "no --zone-rule CIDR=dc2"},
		{[]string{"--peer-address", "nohost"}, "--peer-address"},
	} {
		args := append([]string{"server", "--data", filepath.Join(dir, "d")}, tc.args...)
		out, code, err := runCLI(t, args...)
		wantExit(t, tc.want, out, code, err, 2, tc.want)
	}
}

// TestSystemdUnitFlags: every flag deploy/systemd/lightsout.service gives
// the server is one the server has, and every variable it uses is set in
// deploy/systemd/lightsout.env.
func TestSystemdUnitFlags(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/systemd/lightsout.service")
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile("../../deploy/systemd/lightsout.env")
	if err != nil {
		t.Fatal(err)
	}
	exec := regexp.MustCompile(`(?s)ExecStart=(.*?[^\\])\n`).FindSubmatch(unit)
	if exec == nil {
		t.Fatal("no ExecStart")
	}
	srv := newServerCmd()
	for _, m := range regexp.MustCompile(`--([a-z-]+)`).FindAllSubmatch(exec[1], -1) {
		if srv.Flags().Lookup(string(m[1])) == nil {
			t.Errorf("the unit passes --%s, which lightsout server does not have", m[1])
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)\}`).FindAllSubmatch(exec[1], -1) {
		if !regexp.MustCompile(`(?m)^` + string(m[1]) + `=`).Match(env) {
			t.Errorf("the unit uses ${%s}, which lightsout.env does not set", m[1])
		}
	}
}
