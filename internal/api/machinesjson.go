package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

// A page of GET /api/v1/machines is written by hand, not by encoding/json:
// its reflection, the time.Time marshallers it validates and compacts, and
// their garbage were a third of a page's CPU (bench/api). The bytes are
// encoding/json's (TestMachinesJSONIsEncodingJSON fills every field of the
// types, so a field added to them and not here fails it); anything this
// encoder cannot write (a time outside years 0–9999) falls back to
// writeJSON.

var pageBufs = sync.Pool{New: func() any { return new([]byte) }}

// writeMachines writes out as writeJSON would.
func writeMachines(w http.ResponseWriter, out wire.Machines) {
	bp := pageBufs.Get().(*[]byte)
	defer pageBufs.Put(bp)
	b, ok := appendMachines((*bp)[:0], out)
	if cap(b) <= 4<<20 {
		*bp = b
	}
	if !ok {
		writeJSON(w, http.StatusOK, out)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// appendMachines appends out as encoding/json's Encoder (HTML not escaped)
// writes it, newline included; false when it cannot.
func appendMachines(b []byte, out wire.Machines) ([]byte, bool) {
	ok := true
	b = append(b, `{"machines":`...)
	if out.Machines == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range out.Machines {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMachineView(b, &out.Machines[i], &ok)
		}
		b = append(b, ']')
	}
	if out.NextAfter != 0 {
		b = append(b, `,"next_after":`...)
		b = strconv.AppendInt(b, out.NextAfter, 10)
	}
	return append(b, "}\n"...), ok
}

func appendMachineView(b []byte, v *manager.MachineView, ok *bool) []byte {
	m := &v.Machine
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, m.ID, 10)
	b = append(b, `,"name":`...)
	b = appendString(b, m.Name)
	if m.GUID != "" {
		b = append(b, `,"guid":`...)
		b = appendString(b, m.GUID)
	}
	if m.Group != "" {
		b = append(b, `,"group":`...)
		b = appendString(b, m.Group)
	}
	if len(m.Tags) > 0 {
		b = append(b, `,"tags":`...)
		b = appendStrings(b, m.Tags)
	}
	if m.Role != "" {
		b = append(b, `,"role":`...)
		b = appendString(b, m.Role)
	}
	if m.Spare {
		b = append(b, `,"spare":true`...)
	}
	if m.Registering {
		b = append(b, `,"registering":true`...)
	}
	if m.Enclosure != "" {
		b = append(b, `,"enclosure":`...)
		b = appendString(b, m.Enclosure)
	}
	if m.Slot != 0 {
		b = append(b, `,"slot":`...)
		b = strconv.AppendInt(b, int64(m.Slot), 10)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, m.CreatedAt, ok)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, m.UpdatedAt, ok)
	if m.Zone != "" {
		b = append(b, `,"zone":`...)
		b = appendString(b, m.Zone)
	}
	b = append(b, `,"channels":`...)
	if v.Channels == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range v.Channels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendChannel(b, &v.Channels[i], ok)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendChannel(b []byte, c *manager.ChannelView, ok *bool) []byte {
	b = append(b, `{"account":`...)
	b = appendAccount(b, &c.Account, ok)
	b = append(b, `,"state":`...)
	b = appendState(b, &c.State, ok)
	if c.Remedy != "" {
		b = append(b, `,"remedy":`...)
		b = appendString(b, c.Remedy)
	}
	if len(c.Security) > 0 {
		b = append(b, `,"security_findings":`...)
		b = appendAny(b, c.Security, ok)
	}
	if c.NextAttempt != nil {
		b = append(b, `,"next_attempt":`...)
		b = appendTime(b, *c.NextAttempt, ok)
	}
	if c.StaleSince != nil {
		b = append(b, `,"stale_since":`...)
		b = appendTime(b, *c.StaleSince, ok)
	}
	return append(b, '}')
}

func appendAccount(b []byte, a *store.Account, ok *bool) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, a.ID, 10)
	b = append(b, `,"machine_id":`...)
	b = strconv.AppendInt(b, a.MachineID, 10)
	b = append(b, `,"machine":`...)
	b = appendString(b, a.Machine)
	b = append(b, `,"protocol":`...)
	b = appendString(b, a.Protocol)
	b = append(b, `,"address":`...)
	b = appendString(b, a.Address)
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(a.Port), 10)
	b = append(b, `,"user":`...)
	b = appendString(b, a.User)
	b = append(b, `,"privilege":`...)
	b = appendString(b, a.Privilege)
	b = append(b, `,"cipher_suite":`...)
	b = strconv.AppendInt(b, int64(a.CipherSuite), 10)
	if a.RedfishAuth != "" {
		b = append(b, `,"redfish_auth":`...)
		b = appendString(b, a.RedfishAuth)
	}
	if len(a.CipherSuites) > 0 {
		b = append(b, `,"cipher_suites":[`...)
		for i, s := range a.CipherSuites {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(s), 10)
		}
		b = append(b, ']')
	}
	b = append(b, `,"credentials_changed_at":`...)
	b = appendTime(b, a.CredentialsChangedAt, ok)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, a.CreatedAt, ok)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, a.UpdatedAt, ok)
	return append(b, '}')
}

func appendState(b []byte, s *store.ChannelState, ok *bool) []byte {
	b = append(b, `{"account_id":`...)
	b = strconv.AppendInt(b, s.AccountID, 10)
	b = append(b, `,"state":`...)
	b = appendString(b, string(s.State))
	if s.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, string(s.Reason))
	}
	if len(s.Conditions) > 0 {
		b = append(b, `,"conditions":[`...)
		for i, c := range s.Conditions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, string(c))
		}
		b = append(b, ']')
	}
	if s.Message != "" {
		b = append(b, `,"message":`...)
		b = appendString(b, s.Message)
	}
	b = append(b, `,"since":`...)
	b = appendTime(b, s.Since, ok)
	b = append(b, `,"checked_at":`...)
	b = appendTime(b, s.CheckedAt, ok)
	if s.GUID != "" {
		b = append(b, `,"guid":`...)
		b = appendString(b, s.GUID)
	}
	if s.Power != "" {
		b = append(b, `,"power":`...)
		b = appendString(b, s.Power)
	}
	if len(s.Evidence) > 0 {
		b = append(b, `,"evidence":`...)
		b = appendAny(b, s.Evidence, ok)
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendTime appends t as time.Time.MarshalJSON does (RFC 3339 with the
// nanoseconds it has); a year outside 0–9999 clears ok.
func appendTime(b []byte, t time.Time, ok *bool) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		*ok = false
		return b
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendAny appends v as encoding/json does (HTML not escaped), for the
// rare parts (security findings, evidence).
func appendAny(b []byte, v any, ok *bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		*ok = false
		return b
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json does with HTML escaping
// off: control characters, quote and backslash escaped, invalid UTF-8 as
// U+FFFD, and U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
