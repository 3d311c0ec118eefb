package probe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/secret"
)

// MaxRedfishMemo bounds the BMCs a RedfishMemo remembers; Save keeps the
// most recently checked ones.
const MaxRedfishMemo = 65536

// maxMemoBlob bounds one remembered TLS session (ticket or state: the
// state holds the BMC's certificate chain); a bigger one is not kept.
const maxMemoBlob = 16 << 10

// RedfishMemoEntry is what one-shot checks remember of one Redfish
// endpoint (address:port) between runs: the certificate the last check
// saw (the key of everything else: nothing below is used against another
// certificate), the System it read, the authentication that worked, and
// the TLS session the BMC issued for resumption.
type RedfishMemoEntry struct {
	Cert    string       // SHA-256 of the leaf certificate, hex
	System  string       // the ComputerSystem read (its @odata.id)
	Systems string       // the collection it was listed in
	Auth    redfish.Auth // basic or session: what the service took
	Ticket  []byte       // TLS session ticket (tls.ClientSessionState.ResumptionState)
	Session []byte       // tls.SessionState.Bytes()
	At      time.Time    // last check
}

// RedfishMemo remembers, per Redfish endpoint, what one-shot checks
// learned (RedfishMemoEntry), so that the next run's check of a BMC that
// takes HTTP Basic is one request (GET the System) over a resumed TLS
// session instead of a full handshake and three requests. It is safe for
// concurrent use. On disk (LoadRedfishMemo, Save) it is sealed with a
// secret.Box: the TLS session secrets in it are credentials.
type RedfishMemo struct {
	mu    sync.Mutex
	m     map[string]RedfishMemoEntry
	dirty bool
}

// NewRedfishMemo returns an empty memo.
func NewRedfishMemo() *RedfishMemo { return &RedfishMemo{m: map[string]RedfishMemoEntry{}} }

// Get returns what is remembered of endpoint (address:port).
func (r *RedfishMemo) Get(endpoint string) (RedfishMemoEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[endpoint]
	return e, ok
}

// Put remembers e for endpoint.
func (r *RedfishMemo) Put(endpoint string, e RedfishMemoEntry) {
	if len(e.Ticket) > maxMemoBlob || len(e.Session) > maxMemoBlob {
		e.Ticket, e.Session = nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[endpoint] = e
	r.dirty = true
}

// Forget drops endpoint.
func (r *RedfishMemo) Forget(endpoint string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[endpoint]; ok {
		delete(r.m, endpoint)
		r.dirty = true
	}
}

// Len is how many endpoints are remembered.
func (r *RedfishMemo) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// memoBinding is what a sealed memo is bound to (secret.Box.SealBound):
// a value sealed for something else with the same key does not open as a
// memo.
// Version 2 is the compact encoding (encodeMemo); version 1, gob, is
// still read.
var (
	memoBinding   = []byte("lightsout redfish check memo v2")
	memoBindingV1 = []byte("lightsout redfish check memo v1")
)

// LoadRedfishMemo reads the memo sealed at path with box. A missing file
// is an empty memo; a file that does not open (another key, altered,
// another format) is an empty memo and an error saying so (the caller
// warns and goes on: it is a cache, Save replaces it).
func LoadRedfishMemo(path string, box *secret.Box) (*RedfishMemo, error) {
	r := NewRedfishMemo()
	return r, r.Load(path, box)
}

// Load replaces what r holds with the memo sealed at path (see
// LoadRedfishMemo); on an error r is left as it was.
func (r *RedfishMemo) Load(path string, box *secret.Box) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m map[string]RedfishMemoEntry
	plain, err := box.OpenBound(b, memoBinding)
	if err == nil {
		m, err = decodeMemo(plain)
		if err != nil {
			return fmt.Errorf("%s: not a Redfish check memo: %v (starting afresh)", path, err)
		}
	} else if plain, err1 := box.OpenBound(b, memoBindingV1); err1 == nil {
		if err := gob.NewDecoder(bytes.NewReader(plain)).Decode(&m); err != nil {
			return fmt.Errorf("%s: not a Redfish check memo: %v (starting afresh)", path, err)
		}
		if m == nil {
			m = map[string]RedfishMemoEntry{}
		}
	} else {
		return fmt.Errorf("%s: %w (starting afresh)", path, err)
	}
	r.mu.Lock()
	r.m, r.dirty = m, false
	r.mu.Unlock()
	return nil
}

// Save seals the memo with box and writes it to path (mode 0600, through a
// temporary file renamed over it), keeping the MaxRedfishMemo most
// recently checked endpoints. Nothing is written when nothing changed
// since the load.
func (r *RedfishMemo) Save(path string, box *secret.Box) error {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	m := r.m
	if len(m) > MaxRedfishMemo {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return m[keys[i]].At.After(m[keys[j]].At) })
		kept := make(map[string]RedfishMemoEntry, MaxRedfishMemo)
		for _, k := range keys[:MaxRedfishMemo] {
			kept[k] = m[k]
		}
		r.m, m = kept, kept
	}
	plain := encodeMemo(m)
	r.dirty = false
	r.mu.Unlock()
	sealed, err := box.SealBound(plain, memoBinding)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(sealed); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// encodeMemo writes m in the memo's compact encoding, into a buffer of
// its exact size (gob, before, allocated about four times the file at the
// end of a run; with a thousand checks' garbage not yet collected, fresh
// memory is page faults): a count, then per endpoint its key, Cert,
// System, Systems, Auth, Ticket and Session, each a length (uvarint) and
// its bytes, and At (Unix nanoseconds, varint; 0 the zero time).
func encodeMemo(m map[string]RedfishMemoEntry) []byte {
	n := binary.MaxVarintLen64
	for k, e := range m {
		n += 7*binary.MaxVarintLen32 + len(k) + len(e.Cert) + len(e.System) + len(e.Systems) + len(e.Auth) +
			len(e.Ticket) + len(e.Session) + binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, e := range m {
		for _, f := range [...]string{k, e.Cert, e.System, e.Systems, string(e.Auth)} {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
		for _, f := range [...][]byte{e.Ticket, e.Session} {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
		var at int64
		if !e.At.IsZero() {
			at = e.At.UnixNano()
		}
		b = binary.AppendVarint(b, at)
	}
	return b
}

// decodeMemo reads encodeMemo's encoding. The entries' Ticket and Session
// share b (not copied: b is the memo's own unsealed copy).
func decodeMemo(b []byte) (map[string]RedfishMemoEntry, error) {
	errShort := errors.New("truncated")
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errShort
	}
	b = b[n:]
	field := func() ([]byte, error) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, errShort
		}
		f := b[n : n+int(l) : n+int(l)]
		b = b[n+int(l):]
		return f, nil
	}
	m := make(map[string]RedfishMemoEntry, count)
	for range count {
		var fs [7][]byte
		for i := range fs {
			f, err := field()
			if err != nil {
				return nil, err
			}
			fs[i] = f
		}
		at, n := binary.Varint(b)
		if n <= 0 {
			return nil, errShort
		}
		b = b[n:]
		e := RedfishMemoEntry{Cert: string(fs[1]), System: string(fs[2]), Systems: string(fs[3]),
			Auth: redfish.Auth(fs[4]), Ticket: fs[5], Session: fs[6]}
		if len(e.Ticket) == 0 {
			e.Ticket = nil
		}
		if len(e.Session) == 0 {
			e.Session = nil
		}
		if at != 0 {
			e.At = time.Unix(0, at)
		}
		m[string(fs[0])] = e
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d bytes after the last entry", len(b))
	}
	return m, nil
}

// tlsSlot is one check's say in its TLS connections (NewOneShotRedfishTransport
// finds it in the request's context): which certificate a new connection
// must present (want; "" any), the remembered session to resume, and the
// session the BMC issued. It is the connection's ClientSessionCache.
type tlsSlot struct {
	mu      sync.Mutex
	want    string
	ticket  []byte // the session offered for resumption (serialized)
	session []byte
	got     *tls.ClientSessionState // issued by the BMC on this check's connection
	timeout time.Duration           // the TLS handshake's bound
}

type tlsSlotKey struct{}

func withTLSSlot(ctx context.Context, s *tlsSlot) context.Context {
	return context.WithValue(ctx, tlsSlotKey{}, s)
}

// Get offers the remembered session, if any.
func (s *tlsSlot) Get(string) (*tls.ClientSessionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ticket) == 0 || len(s.session) == 0 {
		return nil, false
	}
	st, err := tls.ParseSessionState(s.session)
	if err != nil {
		s.ticket, s.session = nil, nil
		return nil, false
	}
	cs, err := tls.NewResumptionState(s.ticket, st)
	if err != nil {
		s.ticket, s.session = nil, nil
		return nil, false
	}
	return cs, true
}

// Put keeps the session the BMC issued (nil: the offered one is spent).
func (s *tlsSlot) Put(_ string, cs *tls.ClientSessionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs == nil {
		s.ticket, s.session = nil, nil
		return
	}
	s.got = cs
}

func (s *tlsSlot) setWant(fp string) {
	s.mu.Lock()
	s.want = fp
	s.mu.Unlock()
}

// issued serializes the session the BMC issued on this check's connection.
func (s *tlsSlot) issued() (ticket, session []byte, ok bool) {
	s.mu.Lock()
	cs := s.got
	s.mu.Unlock()
	if cs == nil {
		return nil, nil, false
	}
	ticket, st, err := cs.ResumptionState()
	if err != nil || st == nil {
		return nil, nil, false
	}
	session, err = st.Bytes()
	if err != nil {
		return nil, nil, false
	}
	return ticket, session, true
}

// errNotLearnedCert: a connection a check opened for a remembered request
// (RedfishMemo) presented another certificate than the one remembered;
// it was closed before any request was sent on it.
var errNotLearnedCert = errors.New("the BMC presents another certificate than the one remembered")

// OneShotTransport is the transport of a one-shot run (`lightsout
// check`): NewRedfishTransport's, whose TLS connections take a check's
// tlsSlot from the request's context (a prober with a RedfishMemo): each
// resumes the session remembered for its BMC and hands back the one the
// BMC issues, and is closed before any request when it must present a
// remembered certificate and presents another (errNotLearnedCert):
// credentials sent with the first request go only to the certificate
// they were sent to before. A check of one request (RedfishOneShot's
// learned System) dials through it too, and sends its request without
// net/http (redfish.Client.GetOn).
type OneShotTransport struct {
	*http.Transport
	dialer *oneShotDialer
}

// NewOneShotRedfishTransport returns a OneShotTransport.
func NewOneShotRedfishTransport() *OneShotTransport {
	t := NewRedfishTransport()
	// No TCP keep-alive probes: a one-shot run's connections live for one
	// check (and it saves their three setsockopt calls per connection).
	d := &oneShotDialer{d: net.Dialer{Timeout: DefaultTimeout, KeepAlive: -1}, base: t.TLSClientConfig}
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		slot, _ := ctx.Value(tlsSlotKey{}).(*tlsSlot)
		tc, _, err := d.dial(ctx, network, addr, slot)
		if err != nil {
			return nil, err
		}
		return tc, nil
	}
	return &OneShotTransport{Transport: t, dialer: d}
}

type oneShotDialer struct {
	d    net.Dialer
	base *tls.Config
	// wrapTCP, if set, wraps each TCP connection before anything else
	// sees it (tests count the write system calls through it).
	wrapTCP func(net.Conn) net.Conn
}

// dial opens a TLS connection to addr for slot's check (nil: none);
// connected says whether TCP connected.
func (o *oneShotDialer) dial(ctx context.Context, network, addr string, slot *tlsSlot) (*tls.Conn, bool, error) {
	var tcp net.Conn
	var err error
	if ap, perr := netip.ParseAddrPort(addr); perr == nil && network == "tcp" {
		// An address, not a name: no resolver, no parallel dial.
		tcp, err = o.d.DialTCP(ctx, network, netip.AddrPort{}, ap)
	} else {
		tcp, err = o.d.DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, false, err
	}
	if o.wrapTCP != nil {
		tcp = o.wrapTCP(tcp)
	}
	// Each flight one write, the handshake's last one with the request
	// (coalesceConn).
	raw := newCoalesceConn(tcp)
	cfg := o.base
	timeout := DefaultTimeout
	if slot != nil {
		cfg = o.base.Clone()
		cfg.ClientSessionCache = slot
		if slot.timeout > 0 {
			timeout = slot.timeout
		}
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(host) == nil && cfg.ServerName == "" {
		if cfg == o.base {
			cfg = o.base.Clone()
		}
		cfg.ServerName = host
	}
	// net/http detaches a dial's context from the request's deadline: the
	// handshake has its own, as the transport's TLSHandshakeTimeout.
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		if hctx.Err() != nil && ctx.Err() == nil {
			return nil, true, tlsTimeout{}
		}
		return nil, true, err
	}
	if slot != nil {
		slot.mu.Lock()
		want := slot.want
		slot.mu.Unlock()
		if want != "" {
			st := tc.ConnectionState()
			if len(st.PeerCertificates) == 0 || certSHA256(st.PeerCertificates[0].Raw) != want {
				// Not even the held Finished goes to it.
				tcp.Close()
				return nil, true, errNotLearnedCert
			}
		}
	}
	raw.release()
	return tc, true, nil
}

// getOnce is a check's one request over its own connection (dialed
// for slot, not pooled): GET path with c's credentials.
func (o *oneShotDialer) getOnce(ctx context.Context, c *redfish.Client, t Target, slot *tlsSlot, path string) (*redfish.Response, error) {
	dctx, cancel := context.WithTimeout(ctx, t.timeout())
	defer cancel()
	tc, connected, err := o.dial(dctx, "tcp", t.Addr.String(), slot)
	switch {
	case err == nil:
		return c.GetOn(ctx, tc, path)
	case errors.Is(err, errNotLearnedCert):
		return nil, err
	case errors.Is(ctx.Err(), context.Canceled):
		return nil, fmt.Errorf("GET %s: %w", path, ctx.Err())
	case isTimeout(err):
		return nil, &redfish.NoReplyError{Method: http.MethodGet, URL: path, Connected: connected, Err: err}
	}
	return nil, fmt.Errorf("GET %s: %w", path, err)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// tlsTimeout is a TLS handshake that did not finish in time (as net/http's
// "TLS handshake timeout").
type tlsTimeout struct{}

func (tlsTimeout) Error() string   { return "TLS handshake timeout" }
func (tlsTimeout) Timeout() bool   { return true }
func (tlsTimeout) Temporary() bool { return true }

func certSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
