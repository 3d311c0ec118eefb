package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDemoRunsARound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Second)
	defer cancel()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	// A --dir that does not exist yet is created.
	root.SetArgs([]string{"demo", "--count", "40", "--interval", "2s", "--dir", filepath.Join(t.TempDir(), "new", "demo"), "--listen", "127.0.0.1:0",
		"--base-port", strconv.Itoa(31000 + os.Getpid()%20000)})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"40 simulated BMCs", "admin.token", "4 host agents enrolled", "agent listener: 127.0.0.1:", "console: http://127.0.0.1:", "Unknown → NotAuthenticated (wrong_password)", "port_refused", "wrong_password", "unknown_user", "guid_mismatch", "+Busy", "+Insecure", "silent",
		"host-a: host link uses ipv4", "host-d: host link NotTrusted", "host-c: host link Down",
		"incidents: ", `refuses the password of user "admin"`, "bmc-00031 and bmc-00032 answer at each other's address"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}
