package sim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/inventory"
)

// syncBuf is a bytes.Buffer safe for the writer and a reader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "fleet.yml")
	n := testNet.Add(1)
	cfg := Config{Count: 3, Seed: 8, BaseAddr: "127." + strconv.Itoa(int(n)) + ".0.1", BasePort: 21000,
		Enclosures: []EnclosureConfig{{Name: "enc-r", Blades: 2}}}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	var fleet *Fleet
	var url string
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, RunOptions{ExportInventory: inv, ControlAddr: "127.0.0.1:0", Ready: func(f *Fleet, cs *ControlServer) {
			fleet, url = f, cs.URL()
			cancel()
		}}, &out)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	text := out.String()
	if !strings.Contains(text, "3 BMCs ready (+1 enclosure managers) on 127."+strconv.Itoa(int(n))+".0.1 ports 21000-21003; control API "+url) ||
		!strings.Contains(text, "stopped") {
		t.Errorf("output:\n%s", text)
	}
	if strings.Contains(text, fleet.Password()) {
		t.Error("the password was printed")
	}
	pw, err := os.ReadFile(filepath.Join(dir, "fleet.password"))
	if err != nil || strings.TrimSpace(string(pw)) != fleet.Password() {
		t.Fatalf("generated password file: %v", err)
	}
	loaded, err := inventory.Load(inv)
	if err != nil || len(loaded.Machines) != 3 || loaded.Machines[0].PasswordFile != "fleet.password" {
		t.Fatalf("inventory: %+v %v", loaded, err)
	}
	spelled, _ := guid.Parse(loaded.Machines[1].GUID)
	if !fleet.BMCs()[1].RegisteredGUID().Matches(spelled) {
		t.Errorf("inventory GUID %s", loaded.Machines[1].GUID)
	}

	// Input errors come back as FieldErrors before anything starts.
	for _, c := range []struct {
		opts  RunOptions
		field string
	}{
		{RunOptions{ExportInventory: filepath.Join(dir, "x.json")}, "export-inventory"},
		{RunOptions{ControlAddr: "192.0.2.1:80"}, "control"},
		{RunOptions{ControlAddr: "nonsense"}, "control"},
	} {
		err := Run(context.Background(), cfg, c.opts, &bytes.Buffer{})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a %s error", c.opts, err, c.field)
		}
	}
}

func TestStartTimeFaults(t *testing.T) {
	f := newTestFleet(t, Config{Count: 4, Seed: 31,
		Faults: map[string]Faults{"bmc-00001": {GUIDReplaced: true}, "bmc-00004": {Insecure: true}},
		Swaps:  [][]string{{"bmc-00002", "bmc-00003"}}}, true)
	b1, b2, b3, b4 := f.BMCs()[0], f.BMCs()[1], f.BMCs()[2], f.BMCs()[3]
	if b1.GUID() == b1.RegisteredGUID() {
		t.Error("guid_replaced at start kept the registered GUID")
	}
	if _, g, err := handshake(t, b1.HomeAddr(), AdminUser); err != nil || guid.GUID(g) != b1.GUID() {
		t.Errorf("bmc-00001 answers %x, want %x (%v)", g, b1.GUID(), err)
	}
	if _, g, err := handshake(t, b2.HomeAddr(), AdminUser); err != nil || guid.GUID(g) != b3.GUID() {
		t.Errorf("bmc-00002's address answers %x, want bmc-00003's %x (%v)", g, b3.GUID(), err)
	}
	if st := b3.Status(); st.SwappedWith != "bmc-00002" {
		t.Errorf("bmc-00003 swapped_with %q", st.SwappedWith)
	}
	// Insecure: the anonymous user may log in; a sound BMC refuses it.
	if st, _, err := handshake(t, b4.Addr(), ""); err != nil || st != 0 {
		t.Errorf("insecure BMC refused the null user: %#x %v", st, err)
	}
	if st, _, err := handshake(t, b1.Addr(), ""); err != nil || st != rmcpUnauthorizedName {
		t.Errorf("sound BMC: null user status %#x %v", st, err)
	}
	p, err := exchange(t, b4.Addr(), authCaps(), time.Second)
	if err != nil || !authCapsOK(p) || p[14+8]&0x01 == 0 || p[14+9]&0x03 == 0 {
		t.Errorf("insecure auth caps: % x %v", p, err)
	}
	p, err = exchange(t, b1.Addr(), authCaps(), time.Second)
	if err != nil || !authCapsOK(p) || p[14+8]&0x01 != 0 || p[14+9]&0x03 != 0 {
		t.Errorf("sound auth caps: % x %v", p, err)
	}
}
