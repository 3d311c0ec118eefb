package server

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/internal/peertest"
)

var (
	metricRE = regexp.MustCompile(`\b(lightsout_[a-z_]+|probe_[a-z_]+)\b`)
	fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)
)

// served is every metric name the server's registry describes.
func served(t *testing.T) map[string]bool {
	t.Helper()
	s, err := New(context.Background(), Config{DataDir: t.TempDir(), AgentListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch := make(chan *prometheus.Desc, 64)
	go func() { s.Registry.Describe(ch); close(ch) }()
	names := map[string]bool{"probe_success": true, "probe_duration_seconds": true} // /probe's
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	return names
}

// known reports whether name (a series name, maybe a histogram's _bucket,
// _sum or _count) is served.
func known(names map[string]bool, name string) bool {
	if names[name] {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok && names[b] {
			return true
		}
	}
	return false
}

// TestDeployPrometheusAndGrafana: deploy/prometheus's rules pass promtool
// check rules and their unit tests (promtool test rules), and every metric
// the rules and deploy/grafana's dashboard name is one the server serves;
// the dashboard is a well-formed Grafana dashboard (title, uid, unique
// panel ids, a query on every panel).
func TestDeployPrometheusAndGrafana(t *testing.T) {
	names := served(t)
	for _, want := range []string{"lightsout_channel_up", "lightsout_incident_open", "lightsout_channels", "lightsout_agents"} {
		if !names[want] {
			t.Fatalf("the server does not describe %s (describes %d names)", want, len(names))
		}
	}
	dir := filepath.Join("..", "..", "deploy")
	rules, err := os.ReadFile(filepath.Join(dir, "prometheus", "lightsout-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dash, err := os.ReadFile(filepath.Join(dir, "grafana", "lightsout.json"))
	if err != nil {
		t.Fatal(err)
	}
	for file, text := range map[string]string{"lightsout-rules.yml": string(rules), "lightsout.json": string(dash)} {
		for _, m := range metricRE.FindAllString(text, -1) {
			if !known(names, m) {
				t.Errorf("%s names %s, which the server does not serve", file, m)
			}
		}
	}

	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Schema int    `json:"schemaVersion"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("lightsout.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.Schema < 30 || len(d.Panels) == 0 {
		t.Errorf("dashboard header: %q %q schema %d, %d panels", d.Title, d.UID, d.Schema, len(d.Panels))
	}
	var ids []int
	for _, p := range d.Panels {
		if slices.Contains(ids, p.ID) || p.Type == "" || p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q (%s): duplicate id, no type/title or no query", p.ID, p.Title, p.Type)
		}
		ids = append(ids, p.ID)
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: empty expr", p.Title)
			}
		}
	}

	promtool := peertest.Need(t, "promtool")[0]
	for _, args := range [][]string{{"check", "rules", "lightsout-rules.yml"}, {"test", "rules", "lightsout-rules.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join(dir, "prometheus")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
