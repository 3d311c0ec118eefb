package hostlink

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeIdentity(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"uuid":"u-1","firmware":"7.0","service":"lightsout-hostlink"}`, true},
		{`{"uuid":"u-1","firmware":"7.0","service":"lightsout-hostlink"}` + "\n", true},
		{`{"uuid":"u-1","service":"other"}`, false},
		{`{"uuid":"u-1","service":"lightsout-hostlink"} {}`, false},
		{`{"uuid":[1,2],"service":"lightsout-hostlink"}`, false},
		{`{"uuid":"a\u0000b","service":"lightsout-hostlink"}`, false},
		{`{"uuid":"` + strings.Repeat("x", 300) + `","service":"lightsout-hostlink"}`, false},
		{`{"uuid":"u","service":"lightsout-hostlink","pad":"` + strings.Repeat("x", MaxBody) + `"}`, false},
		{`<html>`, false},
		{``, false},
		{`null`, false},
	} {
		_, err := DecodeIdentity([]byte(c.body))
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadAnswer)) {
			t.Errorf("DecodeIdentity(%.60q) error %v, want ok=%v (failures wrap ErrBadAnswer)", c.body, err, c.ok)
		}
	}
}

// FuzzIdentity: the decoder never panics, every failure is a bad answer,
// and what it accepts is bounded, printable and survives a round trip.
func FuzzIdentity(f *testing.F) {
	f.Add([]byte(`{"uuid":"4c4c4544-0031-3210-8050-b4c04f4e3232","firmware":"7.00.00.171","service":"lightsout-hostlink"}`))
	f.Add([]byte(`{"uuid": [1,2,3], "service": <html>garbage`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := DecodeIdentity(b)
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("error %v does not wrap ErrBadAnswer", err)
			}
			return
		}
		if id.Service != ServiceName || len(id.UUID) > maxField || len(id.Firmware) > maxField || !printable(id.UUID) || !printable(id.Firmware) {
			t.Fatalf("accepted %+v", id)
		}
		again, err := json.Marshal(id)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeIdentity(again)
		if err != nil || back != id {
			t.Fatalf("round trip %+v → %s → %+v, %v", id, again, back, err)
		}
	})
}
