// Package apitest starts, for tests, a real management server (server.New
// on a temporary data directory, SQLite or a PostgreSQL DSN) serving the
// API over real HTTP on 127.0.0.1, with a simulated BMC fleet on loopback
// and one token per role.
package apitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Options of Start. Zero values take defaults.
type Options struct {
	// DSN is a PostgreSQL URL; empty: SQLite in the data directory.
	DSN string
	// Fleet configures the simulator (Count 0: no fleet). BaseAddr and
	// BasePort are chosen by Start.
	Fleet sim.Config
	// Subnet picks the second octet of the fleet's loopback addresses as
	// root (127.Subnet.n.1), so packages running at once do not collide.
	Subnet int
	// Configure, when set, adjusts the server's configuration before it
	// starts (event thresholds, webhooks, ...).
	Configure func(*server.Config)
}

// Env is a running server with its fleet.
type Env struct {
	Server *server.Server
	URL    string
	Fleet  *sim.Fleet // nil without a fleet
	Dir    string     // the server's data directory
	// Tokens and TokenFiles by role; the admin token is the one the
	// server wrote on its first start.
	Tokens     map[store.Role]string
	TokenFiles map[store.Role]string
	// PasswordFile holds the fleet password; Inventory the fleet's
	// inventory file (YAML) naming it.
	PasswordFile, Inventory string
}

var fleetSeq atomic.Int32

// Start starts everything and stops it when t ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	e := &Env{Dir: t.TempDir(), Tokens: map[store.Role]string{}, TokenFiles: map[store.Role]string{}}
	if o.Fleet.Count > 0 {
		e.Fleet = startFleet(t, o)
		e.PasswordFile = filepath.Join(e.Dir, "fleet.password")
		e.Inventory = filepath.Join(e.Dir, "fleet.yaml")
		if err := e.Fleet.WritePasswordFile(e.PasswordFile); err != nil {
			t.Fatal(err)
		}
		if err := e.Fleet.ExportInventory(e.Inventory, e.PasswordFile); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(e.Dir, "data")
	cfg := server.Config{
		DataDir: data, DB: o.DSN,
		Schedule: state.Schedule{Interval: 2 * time.Second, Jitter: 0.1, Confirm: time.Second,
			MaxBackoff: 4 * time.Second, AuthRetry: 10 * time.Minute},
		Damping: state.Damping{Consecutive: 1},
		Timeout: time.Second,
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	e.Server = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.URL = "http://" + ln.Addr().String()
	// Every response is validated against the served OpenAPI document;
	// mismatches fail the test once the server has stopped (this cleanup
	// runs after the one below).
	var ct contract
	t.Cleanup(func() { ct.report(t) })
	h := api.New(api.Config{Manager: srv.Manager, Store: srv.Store, Registry: srv.Registry, Logger: srv.Config.Logger,
		Events: srv.Events, Agents: srv.Agents, AgentAddr: srv.AgentAddr,
		Self: srv.Node.Name(), Cluster: srv.Node, PeerKey: srv.PeerKey})
	hs := &http.Server{Handler: ct.wrap(e.URL, h), ReadHeaderTimeout: 10 * time.Second}
	hs.RegisterOnShutdown(srv.Events.CloseSubscribers)
	go hs.Serve(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		_ = srv.Close()
	})

	if err := loadContract(&ct, e.URL); err != nil {
		t.Fatal(err)
	}
	if srv.AdminTokenFile == "" {
		t.Fatal("the server wrote no admin token file on its first start")
	}
	b, err := os.ReadFile(srv.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	e.Tokens[store.RoleAdmin] = strings.TrimSpace(string(b))
	e.TokenFiles[store.RoleAdmin] = srv.AdminTokenFile
	for _, r := range []store.Role{store.RoleOperator, store.RoleViewer} {
		f := filepath.Join(e.Dir, string(r)+".token")
		tok, err := server.CreateToken(ctx, srv.Store, string(r), r, f)
		if err != nil {
			t.Fatal(err)
		}
		e.Tokens[r], e.TokenFiles[r] = tok, f
	}
	return e
}

func startFleet(t testing.TB, o Options) *sim.Fleet {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		cfg := o.Fleet
		n := int(fleetSeq.Add(1))
		if cfg.Password == "" {
			cfg.Password = "fleet-pass-123"
		}
		if os.Geteuid() == 0 {
			subnet := o.Subnet
			if subnet == 0 {
				subnet = 91
			}
			cfg.BaseAddr = fmt.Sprintf("127.%d.%d.1", subnet, (os.Getpid()+n*7)%250+1)
		} else {
			cfg.BaseAddr = "127.0.0.1"
			cfg.BasePort = 20000 + (os.Getpid()*13+n*(cfg.Count+len(cfg.Enclosures)+1))%30000
		}
		f, err := sim.New(cfg)
		if err == nil {
			t.Cleanup(func() { f.Close() })
			return f
		}
		lastErr = err
	}
	t.Fatalf("simulator: %v", lastErr)
	return nil
}

// Client returns an API client with the role's token.
func (e *Env) Client(t testing.TB, r store.Role) *client.Client {
	t.Helper()
	c, err := client.New(e.URL, e.Tokens[r])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ImportFleet imports the fleet's inventory through the API (as admin).
func (e *Env) ImportFleet(t testing.TB) {
	t.Helper()
	req := e.FleetImport(t)
	if _, err := e.Client(t, store.RoleAdmin).Import(context.Background(), req); err != nil {
		t.Fatalf("import: %v", err)
	}
}

// FleetImport is the import request of the fleet's inventory, with every
// password.
func (e *Env) FleetImport(t testing.TB) wire.ImportRequest {
	t.Helper()
	inv := e.Fleet.Inventory("fleet.password")
	var buf bytes.Buffer
	if err := inventory.WriteYAML(&buf, inv); err != nil {
		t.Fatal(err)
	}
	req := wire.ImportRequest{Format: "yaml", Content: buf.String(), Source: "fleet.yaml",
		Passwords: map[string]string{}, EnclosurePasswords: map[string]string{}}
	for _, m := range inv.Machines {
		req.Passwords[m.Name] = e.Fleet.Password()
	}
	for _, en := range inv.Enclosures {
		req.EnclosurePasswords[en.Name] = e.Fleet.Password()
	}
	return req
}

// loadContract fetches the served OpenAPI document for ct.
func loadContract(ct *contract, base string) error {
	resp, err := http.Get(base + "/api/v1/openapi.json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/v1/openapi.json: %s", resp.Status)
	}
	return ct.load(base, b)
}
