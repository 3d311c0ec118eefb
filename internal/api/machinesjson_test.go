package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

// Strings that encoding/json escapes, or could be thought to.
var awkward = []string{"", "bmc-00017", `a"b`, `back\slash`, "line\nfeed\r\t", "\x00\x01\x1f\x7f", "\b\f",
	"<html>&amp;</html>", "\u2028\u2029", "bad \xff\xfe utf-8", "é ü ß 漢字 🙂", "trailing \xe2\x80"}

// fillRandom sets every exported field of v (recursively) to a random value; each
// field is left zero with probability zero.
func fillRandom(r *rand.Rand, v reflect.Value, zero float64) {
	if r.Float64() < zero {
		return
	}
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("X", -(5*3600 + 30*60))}
		t := time.Unix(r.Int64N(1<<35), r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
		if r.IntN(3) == 0 {
			t = t.Truncate(time.Second)
		}
		v.Set(reflect.ValueOf(t))
		return
	case reflect.TypeFor[json.RawMessage]():
		raws := []string{`{"rtt_ms": 2, "tries" : [1, 2]}`, `"x<y"`, `[ ]`, `null`}
		v.Set(reflect.ValueOf(json.RawMessage(raws[r.IntN(len(raws))])))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(awkward[r.IntN(len(awkward))])
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(r.Int64N(1<<40) - 1<<39)
	case reflect.Uint8:
		v.SetUint(uint64(r.IntN(256)))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillRandom(r, p.Elem(), 0)
		v.Set(p)
	case reflect.Slice:
		n := r.IntN(3) + 1
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillRandom(r, s.Index(i), zero)
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillRandom(r, v.Field(i), zero)
			}
		}
	default:
		panic("fill: " + v.Type().String())
	}
}

func encodingJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestMachinesJSONIsEncodingJSON: the hand-written page encoder writes
// exactly encoding/json's bytes, for pages whose every field is set (a
// field added to store.Machine, store.Account, store.ChannelState or
// manager.ChannelView and not to the encoder fails here), whose every
// field is zero, and for 2,000 random mixes with awkward strings, times
// in other zones and evidence to compact.
func TestMachinesJSONIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 6))
	cases := []float64{0, 1}
	for range 2000 {
		cases = append(cases, 0.4)
	}
	for i, zero := range cases {
		var out wire.Machines
		fillRandom(r, reflect.ValueOf(&out).Elem(), zero)
		if zero == 0 {
			// every field set, times in range
			for j := range out.Machines {
				out.Machines[j].Channels = append(out.Machines[j].Channels, manager.ChannelView{})
			}
		}
		want := encodingJSON(t, out)
		got, ok := appendMachines(nil, out)
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("case %d (zero %.1f): ok %v\n got %s\nwant %s", i, zero, ok, got, want)
		}
		if zero == 0 && !bytes.Contains(got, []byte(`"stale_since"`)) {
			t.Fatalf("case %d: not every field was set: %s", i, got)
		}
	}
	// Empty pages.
	for _, out := range []wire.Machines{{}, {Machines: []manager.MachineView{}}, {Machines: []manager.MachineView{{}}}} {
		if got, _ := appendMachines(nil, out); !bytes.Equal(got, encodingJSON(t, out)) {
			t.Errorf("%+v: got %s", out, got)
		}
	}
}

// TestMachinesJSONFallsBack: a time encoding/json refuses (year 10000) is
// not written by hand; the page goes to writeJSON, which answers as it
// always did.
func TestMachinesJSONFallsBack(t *testing.T) {
	out := wire.Machines{Machines: []manager.MachineView{{Machine: store.Machine{ID: 1, Name: "m",
		CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}}
	if _, ok := appendMachines(nil, out); ok {
		t.Fatal("year 10000 written by hand")
	}
	got, want := httptest.NewRecorder(), httptest.NewRecorder()
	writeMachines(got, out)
	writeJSON(want, 200, out)
	if got.Code != want.Code || got.Body.String() != want.Body.String() {
		t.Errorf("fallback: %d %s, writeJSON: %d %s", got.Code, got.Body, want.Code, want.Body)
	}
	if got.Code == 200 {
		t.Errorf("year 10000 encoded: %s", got.Body)
	}
}
