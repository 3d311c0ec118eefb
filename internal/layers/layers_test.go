package layers_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPureCores: the packages that hold vocabulary and pure decisions stay
// pure as packages: nothing they import, directly or not, does database,
// network or TLS I/O (`go list -deps`).
func TestPureCores(t *testing.T) {
	pure := []string{"../evcode", "../state", "../agentstate", "../protocol"}
	forbidden := []string{"database/sql", "net", "net/http", "crypto/tls"}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list dependencies")
	}
	for _, p := range pure {
		out, err := exec.Command(goBin, "list", "-deps", p).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p, err)
		}
		deps := strings.Fields(string(out))
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f {
					t.Errorf("%s depends on %s", p, f)
				}
			}
		}
		if p == "../evcode" || p == "../agentstate" || p == "../protocol" {
			for _, d := range deps {
				if strings.HasPrefix(d, "github.com/lightsout/") && !strings.HasSuffix(d, p[2:]) {
					t.Errorf("%s is a leaf, yet imports %s", p, d)
				}
			}
		}
	}
}

// TestSurfacesAboveTheRoot: the API and the console take the server's
// parts (api.Config); neither imports the composition root
// (internal/server), so they do not sit on top of it in the graph.
func TestSurfacesAboveTheRoot(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list dependencies")
	}
	for _, p := range []string{"../api", "../web"} {
		out, err := exec.Command(goBin, "list", "-deps", p).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p, err)
		}
		for _, d := range strings.Fields(string(out)) {
			if d == "github.com/lightsout/lightsout/internal/server" {
				t.Errorf("%s imports internal/server", p)
			}
		}
	}
}
