package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemoRunsARound: the demo starts its fleet, manager and agents and
// prints what it declares, and its incidents lead with the story the
// README tells: the dead enclosure, the refused passwords, the swapped
// addresses and a timeout flood (host-c's link). The test stops the demo
// once everything was printed (at most 45 s).
func TestDemoRunsARound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	root := newRoot()
	out := &syncBuffer{}
	root.SetOut(out)
	root.SetErr(out)
	// A --dir that does not exist yet is created.
	root.SetArgs([]string{"demo", "--count", "40", "--interval", "2s", "--dir", filepath.Join(t.TempDir(), "new", "demo"), "--listen", "127.0.0.1:0",
		"--base-port", strconv.Itoa(31000 + os.Getpid()%20000)})
	wants := []string{"40 simulated BMCs", "admin.token", "4 host agents enrolled", "agent listener: 127.0.0.1:", "console: http://127.0.0.1:", "Unknown → NotAuthenticated (wrong_password)", "port_refused", "wrong_password", "unknown_user", "guid_mismatch", "+Busy", "+Insecure", "silent",
		"host-a: host link uses ipv4", "host-d: host link NotTrusted", "host-c: host link Down",
		"incidents: ", "enclosure enc-b is unreachable", `refuses the password of user "admin"`, "bmc-00031 and bmc-00032 answer at each other's address",
		"flooded with timeouts"}
	missing := func() []string {
		s := out.String()
		var m []string
		for _, w := range wants {
			if !strings.Contains(s, w) {
				m = append(m, w)
			}
		}
		return m
	}
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if len(missing()) == 0 {
				cancel()
				err = <-done
				break wait
			}
		}
	}
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, w := range missing() {
		t.Errorf("demo output lacks %q", w)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out.String())
	}
}
