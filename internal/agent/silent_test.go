package agent_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/pki"
)

// TestSilentAgentIsDown: the connection stays open but heartbeats stop:
// Down after 3 intervals, by the sweeper (not by a closed connection).
func TestSilentAgentIsDown(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	defer srv.Close()
	tok, _, _ := srv.Agents.CreateJoinToken(context.Background(), 0)
	adir := filepath.Join(dir, "s")
	if err := enrollOnly(t, srv.AgentAddr.String(), adir, tok, "s"); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(adir, agent.CertFile), filepath.Join(adir, agent.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(adir, agent.CAFile))
	ca, _ := pki.ParseCertPEM(caPEM)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c, err := tls.Dial("tcp", srv.AgentAddr.String(), &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "lightsout-manager"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The hub's silence limit starts after its welcome, so after start:
	// Down can come no sooner than 3 intervals after it (start taken after
	// the welcome arrived made the check fail under load).
	start := time.Now()
	json.NewEncoder(c).Encode(map[string]any{"type": "hello", "version": "0.5.0", "time": time.Now()})
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, `"welcome"`) {
		t.Fatalf("%q %v", line, err)
	}
	waitState(t, srv.Agents, "s", agent.Up, "", time.Second)
	d := waitState(t, srv.Agents, "s", agent.Down, "no heartbeat", 5*hb)
	if el := time.Since(start); el < 3*hb {
		t.Fatalf("Down after %s, before 3 intervals", el)
	}
	t.Logf("silent agent Down %s after its last message (3 intervals = %s)", time.Since(start), 3*hb)
	_ = d
}
