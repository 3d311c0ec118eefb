package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/peertest"
)

// TestRedfishProtocolValidator runs DMTF's Redfish Protocol Validator
// against a simulated BMC and wants no FAIL. Its report (results.json, TSV,
// HTML, its own output) goes to $LIGHTSOUT_ARTIFACTS/redfish-protocol-validator,
// else internal/sim/testdata/artifacts/redfish-protocol-validator
// (git-ignored), for CI to keep.
func TestRedfishProtocolValidator(t *testing.T) {
	peertest.PeersDir(t)
	f := newTestFleet(t, Config{Count: 1, Seed: 3, Redfish: true, Password: "validator-pw-1"}, false)
	b := f.BMCs()[0]
	dir := os.Getenv("LIGHTSOUT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	dir, _ = filepath.Abs(filepath.Join(dir, "redfish-protocol-validator"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := peertest.RunProtocolValidator(t, "https://"+b.RedfishAddr().String(), AdminUser, f.Password(), dir)
	t.Logf("protocol validator: PASS=%d FAIL=%d NOT_TESTED=%d WARN=%d (report in %s)", r.Pass, r.Fail, r.NotTested, r.Warn, dir)
	if r.Fail != 0 {
		t.Errorf("%d assertions FAIL:\n%s", r.Fail, strings.Join(r.Failures, "\n"))
	}
	if r.Pass < 200 {
		t.Errorf("only %d assertions PASS (259 when this test was written): the validator did not get far\n%s", r.Pass, r.Output)
	}
	// The validator creates and deletes sessions: none may be left.
	if c := b.RedfishCounters(); c.SessionsOpened == 0 || c.SessionsOpen > 0 {
		t.Errorf("sessions: %+v", c)
	}
}
