package hostlink

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeDevice answers Get Device ID and Get System GUID, or stays silent
// until the try's timeout.
type fakeDevice struct {
	mu      sync.Mutex
	silent  bool // every send times out
	sends   int
	closed  bool
	guidRaw [16]byte
}

func (d *fakeDevice) Send(ctx context.Context, netfn, cmd uint8, data []byte, timeout time.Duration) ([]byte, error) {
	d.mu.Lock()
	d.sends++
	silent := d.silent
	d.mu.Unlock()
	if silent {
		select {
		case <-ctx.Done():
		case <-time.After(timeout):
		}
		return nil, fmt.Errorf("fake: %w", ErrTimeout)
	}
	switch {
	case netfn == netFnApp && cmd == cmdGetDeviceID:
		// cc, device id, revision, fw major 2 (device available bit set), fw minor 0x81 BCD, IPMI 2.0
		return []byte{0x00, 0x20, 0x01, 0x82, 0x81, 0x02, 0xbf, 0xa2, 0x02, 0x00, 0x00, 0x01}, nil
	case netfn == netFnApp && cmd == cmdGetSystemGUID:
		return append([]byte{0x00}, d.guidRaw[:]...), nil
	}
	return []byte{0xc1}, nil // invalid command
}

func (d *fakeDevice) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}

func opener(d *fakeDevice) Opener {
	return func(string) (Device, error) { return d, nil }
}

func TestInBandUp(t *testing.T) {
	d := &fakeDevice{}
	// An RFC 4122 version-4 GUID sent in the IPMI (reversed) order.
	want := "8a1f2c3d-4b5e-4f60-9172-8394a5b6c7d8"
	rfc := [16]byte{0x8a, 0x1f, 0x2c, 0x3d, 0x4b, 0x5e, 0x4f, 0x60, 0x91, 0x72, 0x83, 0x94, 0xa5, 0xb6, 0xc7, 0xd8}
	for i := range rfc {
		d.guidRaw[i] = rfc[15-i]
	}
	o := check(t, Config{Opener: opener(d), DisableIPv4: true, DisableIPv6: true})
	if o.State != StateUp || o.Path != PathInBand || o.Address != DefaultDevice {
		t.Fatalf("state %s path %s address %s, want Up inband %s (%s)", o.State, o.Path, o.Address, DefaultDevice, o.Reason)
	}
	if o.Firmware != "2.81" || o.UUID != want {
		t.Errorf("firmware %q uuid %q, want 2.81 and %s", o.Firmware, o.UUID, want)
	}
	if d.sends != 2 || !d.closed || o.Timeouts != 0 || len(o.Attempts) != 1 || o.Attempts[0].Tries != 1 {
		t.Errorf("sends %d closed %v timeouts %d attempts %+v", d.sends, d.closed, o.Timeouts, o.Attempts)
	}
}

func TestInBandFirstEvenWithNetwork(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	cfg := f.config(e.Addr(), "")
	cfg.DisableInBand = false
	cfg.Opener = opener(&fakeDevice{})
	o := check(t, cfg)
	if o.Path != PathInBand || e.Requests() != 0 {
		t.Fatalf("path %s, endpoint requests %d: the device comes first", o.Path, e.Requests())
	}
}

func TestInBandTimeoutsFallThroughToNetwork(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	d := &fakeDevice{silent: true}
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	cfg.DisableInBand = false
	cfg.Opener = opener(d)
	cfg.Timeout, cfg.Retries = 50*time.Millisecond, 2
	o := check(t, cfg)
	if o.State != StateUp || o.Path != PathIPv4 {
		t.Fatalf("state %s path %s, want Up over ipv4 after the silent device", o.State, o.Path)
	}
	a := o.Attempts[0]
	if a.Path != PathInBand || a.OK || !a.Timeout || a.Tries != 3 || !errors.Is(a.Cause, ErrTimeout) {
		t.Errorf("in-band attempt %+v, want 3 timed-out tries", a)
	}
	if o.Timeouts != 3 || d.sends != 3 {
		t.Errorf("timeouts %d sends %d, want 1+Retries = 3", o.Timeouts, d.sends)
	}
	if len(o.Attempts) != 2 || !o.Attempts[1].OK {
		t.Errorf("attempts %+v", o.Attempts)
	}
}

func TestInBandMissingIsSkipped(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	cfg.DisableInBand = false
	cfg.Device = "/dev/ipmi7"
	cfg.Opener = func(p string) (Device, error) { return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist} }
	o := check(t, cfg)
	if o.State != StateUp || o.Path != PathIPv4 || o.Timeouts != 0 {
		t.Fatalf("state %s path %s timeouts %d", o.State, o.Path, o.Timeouts)
	}
	a := o.Attempts[0]
	if a.Path != PathInBand || a.Address != "/dev/ipmi7" || a.Tries != 0 || !errors.Is(a.Cause, ErrNoDevice) || !errors.Is(a.Cause, os.ErrNotExist) {
		t.Errorf("in-band attempt %+v, want skipped with ErrNoDevice", a)
	}
}

func TestInBandBadCompletionCode(t *testing.T) {
	cfg := Config{DisableIPv4: true, DisableIPv6: true, Opener: func(string) (Device, error) { return ccDevice(0xd5), nil }}
	o := check(t, cfg)
	if o.State != StateDown || !errors.Is(o.Attempts[0].Cause, ErrBadAnswer) || o.Attempts[0].Tries != 1 {
		t.Fatalf("state %s attempt %+v, want Down bad answer without retry", o.State, o.Attempts[0])
	}
}

type ccDevice uint8

func (c ccDevice) Send(context.Context, uint8, uint8, []byte, time.Duration) ([]byte, error) {
	return []byte{byte(c)}, nil
}
func (ccDevice) Close() error { return nil }

func TestParseDeviceID(t *testing.T) {
	for _, c := range []struct {
		resp []byte
		want string
		ok   bool
	}{
		{[]byte{0, 0x20, 0x01, 0x07, 0x10, 0x02}, "7.10", true},
		{[]byte{0, 0x20, 0x01, 0x87, 0x10}, "7.10", true},
		{[]byte{0, 0x20, 0x01, 0x07}, "", false},
		{[]byte{0xc0, 0x20, 0x01, 0x07, 0x10}, "", false},
		{nil, "", false},
	} {
		got, err := parseDeviceID(c.resp)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("parseDeviceID(% x) = %q, %v; want %q ok=%v", c.resp, got, err, c.want, c.ok)
		}
	}
}
