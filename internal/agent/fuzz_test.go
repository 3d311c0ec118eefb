package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/pki"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// FuzzSessionMessages feeds arbitrary lines to the manager's handling of
// an authenticated agent's messages (heartbeat, renew, discover, event,
// op-result): whatever an agent sends, the hub must not panic, and what it
// stores stays bounded by the line limit.
func FuzzSessionMessages(f *testing.F) {
	for _, seed := range []string{
		`{"type":"heartbeat","seq":1,"time":"2026-11-21T00:00:00Z","link":{"state":"Up","path":"ipv4"},"queued":3}`,
		`{"type":"renew","req":1,"kind":"link","csr":"AAAA"}`,
		`{"type":"renew","req":2,"kind":"server","csr":""}`,
		`{"type":"discover","req":3}`,
		`{"type":"event","event":{"code":"agent.link_timeout","severity":"warning","message":"x","count":-5}}`,
		`{"type":"event","event":{"code":"oob.state_changed","severity":"bogus"}}`,
		`{"type":"event"}`,
		`{"type":"op-result","op_id":7,"ok":true,"result":{"a":1}}`,
		`{"type":"heartbeat","time":"0001-01-01T00:00:00Z"}`,
		`not json`,
		`{"type":123}`,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	box, err := secret.NewRandomBox()
	if err != nil {
		f.Fatal(err)
	}
	db, err := sqlstore.Open(context.Background(), sqlstore.Options{DSN: filepath.Join(dir, "l.db"), Box: box})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		f.Fatal(err)
	}
	h, err := NewHub(context.Background(), HubConfig{Store: db, CA: ca, Interval: time.Hour,
		OnEvent: func(store.Event) {}, OnAudit: func(store.AuditEntry) {}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.Close() })
	f.Fuzz(func(t *testing.T, line []byte) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		go io.Copy(io.Discard, c2)
		n := &node{st: Status{ID: 1, Name: "fuzz", State: Up}, conn: c1}
		l := &link{enc: json.NewEncoder(c1), set: c1.SetWriteDeadline, pend: map[uint64]chan msg{7: make(chan msg, 1)}, done: make(chan struct{})}
		n.link = l
		h.mu.Lock()
		h.nodes[1] = n
		h.mu.Unlock()
		var m msg
		if err := readMsg(bufio.NewReader(bytes.NewReader(append(line, '\n'))), &m); err != nil {
			return
		}
		h.handleMsg(c1, n, l, 1, m)
		st, _ := h.Get(1)
		if st.Link != nil && len(st.Link.Reason) > maxLine {
			t.Fatalf("a link reason longer than a line: %d", len(st.Link.Reason))
		}
	})
}
