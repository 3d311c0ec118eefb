package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rfService is one BMC's Redfish service: HTTPS on its own address with a
// self-signed certificate, resources in the shape of the DMTF mockups
// (written here, not copied).
type rfService struct {
	b    *BMC
	home netip.AddrPort // the registered endpoint (in the inventory and the certificate)

	mu     sync.Mutex
	addr   netip.AddrPort // where it serves now: another BMC's endpoint after a swap
	ln     net.Listener   // raw TCP listener; nil while port_closed
	srv    *http.Server
	conns  map[net.Conn]struct{} // live connections (served and held)
	certs  [2]*tls.Certificate   // original, replaced (made on first use)
	tokens map[string]string     // X-Auth-Token → session id
	nextID int
	closed bool

	opened, closedN, requests, unauthorized, busy atomic.Uint64

	maxOpen int // most sessions open at once (under mu)
	// origin is each open session's client address (under mu).
	origin map[string]string
}

// RedfishCounters are a BMC's Redfish statistics since the fleet started.
type RedfishCounters struct {
	Requests       uint64 `json:"requests"`
	SessionsOpened uint64 `json:"sessions_opened"`
	SessionsClosed uint64 `json:"sessions_closed"`
	SessionsOpen   int    `json:"sessions_open"`
	Unauthorized   uint64 `json:"unauthorized"`
	Busy           uint64 `json:"busy"`

	// MaxSessionsOpen is the most sessions open at once.
	MaxSessionsOpen int `json:"max_sessions_open"`
}

// RedfishAddr is where the BMC serves Redfish (invalid when the fleet has
// no Redfish).
func (b *BMC) RedfishAddr() netip.AddrPort {
	if b.rf == nil {
		return netip.AddrPort{}
	}
	b.rf.mu.Lock()
	defer b.rf.mu.Unlock()
	return b.rf.addr
}

// RedfishCounters reports the BMC's Redfish statistics (zero without
// Redfish).
func (b *BMC) RedfishCounters() RedfishCounters {
	s := b.rf
	if s == nil {
		return RedfishCounters{}
	}
	s.mu.Lock()
	open, maxOpen := len(s.tokens), s.maxOpen
	s.mu.Unlock()
	return RedfishCounters{Requests: s.requests.Load(), SessionsOpened: s.opened.Load(),
		SessionsClosed: s.closedN.Load(), SessionsOpen: open, Unauthorized: s.unauthorized.Load(), Busy: s.busy.Load(),
		MaxSessionsOpen: maxOpen}
}

// RedfishCertificate is the DER leaf certificate the Redfish service
// presents now (cert_replaced switches it).
func (b *BMC) RedfishCertificate() []byte {
	if b.rf == nil {
		return nil
	}
	c, err := b.rf.cert(b.faultSet().CertReplaced)
	if err != nil {
		return nil
	}
	return c.Certificate[0]
}

// home is its registered endpoint, at where it serves (home, or another
// BMC's home when the fleet starts with the two swapped).
func (b *BMC) startRedfish(home, at netip.AddrPort) error {
	s := &rfService{b: b, home: home, addr: at, conns: map[net.Conn]struct{}{}, tokens: map[string]string{}}
	if _, err := s.cert(false); err != nil {
		return err
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				s.forget(c)
			}
		},
	}
	b.rf = s
	if b.faultSet().PortClosed {
		return nil
	}
	return s.listen()
}

// listen binds the TCP port and serves it. s.mu must not be held.
func (s *rfService) listen() error {
	s.mu.Lock()
	addr := s.addr
	s.mu.Unlock()
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ln.Close()
	}
	s.ln = ln
	s.mu.Unlock()
	// One TLS configuration per certificate, each with its own session
	// ticket keys: a replaced BMC cannot resume a session of the old one.
	var confs [2]*tls.Config
	for i := range confs {
		replaced := i == 1
		confs[i] = &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.cert(replaced)
			},
		}
		var key [32]byte
		_, _ = rand.Read(key[:])
		confs[i].SetSessionTicketKeys([][32]byte{key})
	}
	// Old firmware: TLS 1.0 only (the redfish_tls_legacy fault).
	legacy := &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10, //nolint:gosec // the fault is an insecure BMC
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert(false) }}
	tl := tls.NewListener(&rfListener{s: s, Listener: ln}, &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if s.b.faultSet().RedfishTLSLegacy {
				return legacy, nil
			}
			if s.b.faultSet().CertReplaced {
				return confs[1], nil
			}
			return confs[0], nil
		},
	})
	go s.srv.Serve(tl) //nolint:errcheck // ends when the listener closes
	return nil
}

// rfListener tracks connections and holds those a silent BMC accepts but
// never answers.
type rfListener struct {
	s *rfService
	net.Listener
}

func (l *rfListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		l.s.conns[c] = struct{}{}
		l.s.mu.Unlock()
		if l.s.silent() {
			continue // held open, never read: the client times out
		}
		return c, nil
	}
}

func (s *rfService) silent() bool {
	f := s.b.faultSet()
	return f.Silent || f.EMLink || s.b.enclosureDown()
}

func (s *rfService) forget(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// faultsChanged applies a new fault set: connections are dropped (a BMC
// reconfiguring its web server), the port closed or bound again, and a new
// identity ends the sessions.
func (s *rfService) faultsChanged(old, nf Faults) {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
	if nf.GUIDReplaced != old.GUIDReplaced || nf.CertReplaced != old.CertReplaced {
		s.tokens, s.origin = map[string]string{}, nil // the BMC restarted
	}
	if (nf.WrongPassword && !old.WrongPassword) || (nf.UserRemoved && !old.UserRemoved) || (nf.Locked && !old.Locked) {
		// A changed password, a removed or locked user ends the user's
		// sessions (as OpenBMC's bmcweb does).
		s.tokens, s.origin = map[string]string{}, nil
	}
	ln := s.ln
	if nf.PortClosed && ln != nil {
		s.ln = nil
	}
	s.mu.Unlock()
	switch {
	case nf.PortClosed && ln != nil:
		ln.Close()
	case !nf.PortClosed && ln == nil:
		_ = s.listen()
	}
}

// release drops the connections and the port, for a move to another
// endpoint (Fleet.Swap): both BMCs release theirs before either binds.
func (s *rfService) release() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
	s.tokens = map[string]string{} // sessions are the other BMC's now
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

func (s *rfService) close() {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	s.ln = nil
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	s.srv.Close()
}

// cert returns the original or the replaced certificate, making it on
// first use: ECDSA P-256, self-signed, valid 10 years, the BMC's name and
// address in it.
func (s *rfService) cert(replaced bool) (*tls.Certificate, error) {
	i := 0
	if replaced {
		i = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.certs[i]; c != nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: s.b.name, Organization: []string{"lightsout simulator " + s.b.vendor.Name}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{s.b.name},
		IPAddresses:  []net.IP{s.home.Addr().AsSlice()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	s.certs[i] = c
	return c, nil
}

// ---------------------------------------------------------------------------
// Resources

const (
	rfRoot     = "/redfish/v1"
	rfSessions = rfRoot + "/SessionService/Sessions"
	rfSystem   = rfRoot + "/Systems/1"
	rfManager  = rfRoot + "/Managers/1"
	rfReset    = rfSystem + "/Actions/ComputerSystem.Reset"
)

// rfResetTypes are the reset types the simulated systems allow.
var rfResetTypes = []string{"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "PowerCycle", "Nmi"}

type obj = map[string]any

// rfAllow is the Allow header of each resource (GET implies HEAD); ""
// for a path the service does not have.
func rfAllow(path string) string {
	switch {
	case path == "/redfish", path == rfRoot, path == rfRoot+"/odata", path == rfRoot+"/$metadata",
		path == rfRoot+"/SessionService", path == rfRoot+"/Systems", path == rfRoot+"/Managers", path == rfManager,
		path == rfAccountService, path == rfAccounts, path == rfRoles, rfRoleName(path) != "":
		return "GET, HEAD"
	case path == rfSessions:
		return "GET, HEAD, POST"
	case path == rfSessions+"/Members":
		return "POST"
	case strings.HasPrefix(path, rfSessions+"/"):
		return "GET, HEAD, DELETE"
	case path == rfSystem:
		return "GET, HEAD, PATCH"
	case path == rfReset:
		return "POST"
	case path == rfAdminAccount:
		return "GET, HEAD"
	case path == rfChassis:
		return "GET, HEAD"
	case strings.HasPrefix(path, rfChassis+"/"):
		return "GET, HEAD, PATCH"
	}
	return ""
}

// rfOpen are the resources readable without authentication (DSP0266: the
// service root, the OData service document and $metadata) and the login.
func rfOpen(path, method string) bool {
	switch path {
	case "/redfish", rfRoot, rfRoot + "/odata", rfRoot + "/$metadata":
		return method == http.MethodGet || method == http.MethodHead
	case rfSessions, rfSessions + "/Members":
		return method == http.MethodPost
	}
	return false
}

func (s *rfService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	f := s.b.faultSet()
	if f.Slow > 0 {
		select {
		case <-time.After(time.Duration(f.Slow)):
		case <-r.Context().Done():
			return
		}
	}
	h := w.Header()
	h.Set("OData-Version", "4.0")
	h.Set("Cache-Control", "no-cache")
	if f.Busy503 {
		s.busy.Add(1)
		h.Set("Retry-After", "5")
		rfError(w, http.StatusServiceUnavailable, "Base.1.8.ServiceTemporarilyUnavailable", "The service is temporarily unavailable.")
		return
	}
	if v := r.Header.Get("OData-Version"); v != "" && v != "4.0" {
		rfError(w, http.StatusPreconditionFailed, "Base.1.8.HeaderInvalid", "OData-Version "+v+" is not supported (4.0 is).")
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "" {
		path = "/"
	}
	allow := rfAllow(path)
	if allow == "" {
		rfError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI "+r.URL.Path+" was not found.")
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet // the server sends no body for HEAD
	}
	allowed := false
	for _, m := range strings.Split(allow, ", ") {
		allowed = allowed || m == method
	}
	if method == http.MethodGet {
		h.Set("Allow", allow)
	}
	if !allowed {
		h.Set("Allow", allow)
		rfError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", fmt.Sprintf("%s is not allowed on %s (allowed: %s).", r.Method, r.URL.Path, allow))
		return
	}
	if !rfOpen(path, method) {
		if _, ok := s.authorize(r); !ok {
			s.unauthorized.Add(1)
			if !f.RedfishNoBasic {
				h.Set("WWW-Authenticate", `Basic realm="Redfish"`)
			}
			rfError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "There is no valid session established with the implementation.")
			return
		}
	}
	switch {
	case path == "/redfish":
		rfJSON(w, http.StatusOK, obj{"v1": rfRoot + "/"})
	case path == rfRoot:
		rfJSON(w, http.StatusOK, s.serviceRoot())
	case path == rfRoot+"/odata":
		rfJSON(w, http.StatusOK, s.odata())
	case path == rfRoot+"/$metadata":
		h.Set("Content-Type", "application/xml")
		h.Del("Allow")
		h.Set("Allow", allow)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, rfMetadata)
	case (path == rfSessions || path == rfSessions+"/Members") && method == http.MethodPost:
		if f.RedfishNoSessions {
			h.Set("Allow", "GET, HEAD")
			rfError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "This service offers no sessions; use HTTP Basic authentication.")
			return
		}
		s.login(w, r)
	case path == rfRoot+"/SessionService":
		rfJSON(w, http.StatusOK, obj{"@odata.id": rfRoot + "/SessionService", "@odata.type": "#SessionService.v1_1_8.SessionService",
			"Id": "SessionService", "Name": "Session Service", "ServiceEnabled": !f.RedfishNoSessions, "SessionTimeout": 1800,
			"Sessions": obj{"@odata.id": rfSessions}})
	case path == rfSessions:
		s.mu.Lock()
		var members []any
		for _, id := range s.tokens {
			members = append(members, obj{"@odata.id": rfSessions + "/" + id})
		}
		s.mu.Unlock()
		rfJSON(w, http.StatusOK, collection(rfSessions, "#SessionCollection.SessionCollection", "Session Collection", members))
	case strings.HasPrefix(path, rfSessions+"/") && method == http.MethodDelete:
		id := strings.TrimPrefix(path, rfSessions+"/")
		if !s.logout(id) {
			rfError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "No such session.")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(path, rfSessions+"/"):
		id := strings.TrimPrefix(path, rfSessions+"/")
		if !s.hasSession(id) {
			rfError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "No such session.")
			return
		}
		sess := obj{"@odata.id": path, "@odata.type": "#Session.v1_3_0.Session", "Id": id, "Name": "User Session", "UserName": AdminUser}
		s.mu.Lock()
		if o := s.origin[id]; o != "" {
			sess["ClientOriginIPAddress"] = o
		}
		s.mu.Unlock()
		rfJSON(w, http.StatusOK, sess)
	case path == rfRoot+"/Systems":
		rfJSON(w, http.StatusOK, collection(path, "#ComputerSystemCollection.ComputerSystemCollection", "Computer System Collection", []any{obj{"@odata.id": rfSystem}}))
	case path == rfSystem && method == http.MethodGet:
		rfJSON(w, http.StatusOK, s.system())
	case path == rfSystem:
		s.patchSystem(w, r)
	case path == rfReset:
		s.reset(w, r)
	case path == rfRoot+"/Managers":
		rfJSON(w, http.StatusOK, collection(path, "#ManagerCollection.ManagerCollection", "Manager Collection", []any{obj{"@odata.id": rfManager}}))
	case path == rfManager:
		rfJSON(w, http.StatusOK, obj{"@odata.id": rfManager, "@odata.type": "#Manager.v1_10_0.Manager", "Id": "1", "Name": "Manager",
			"ManagerType": "BMC", "FirmwareVersion": s.b.vendor.Firmware, "Status": obj{"State": "Enabled", "Health": "OK"}})
	case path == rfAccountService:
		rfJSON(w, http.StatusOK, obj{"@odata.id": rfAccountService, "@odata.type": "#AccountService.v1_10_0.AccountService",
			"Id": "AccountService", "Name": "Account Service", "ServiceEnabled": true,
			"MinPasswordLength": 8, "MaxPasswordLength": 20,
			"Accounts": obj{"@odata.id": rfAccounts}, "Roles": obj{"@odata.id": rfRoles}})
	case path == rfAccounts:
		rfJSON(w, http.StatusOK, collection(path, "#ManagerAccountCollection.ManagerAccountCollection", "Accounts Collection", []any{obj{"@odata.id": rfAdminAccount}}))
	case path == rfAdminAccount:
		rfJSON(w, http.StatusOK, obj{"@odata.id": rfAdminAccount, "@odata.type": "#ManagerAccount.v1_8_0.ManagerAccount",
			"Id": "1", "Name": "User Account", "UserName": AdminUser, "RoleId": "Administrator", "Enabled": true,
			"Locked": f.Locked, "Password": nil, "Links": obj{"Role": obj{"@odata.id": rfRoles + "/Administrator"}}})
	case path == rfRoles:
		var members []any
		for _, r := range rfRoleNames {
			members = append(members, obj{"@odata.id": rfRoles + "/" + r})
		}
		rfJSON(w, http.StatusOK, collection(path, "#RoleCollection.RoleCollection", "Roles Collection", members))
	case path == rfChassis || strings.HasPrefix(path, rfChassis+"/"):
		s.chassis(w, r, path)
	case rfRoleName(path) != "":
		name := rfRoleName(path)
		rfJSON(w, http.StatusOK, obj{"@odata.id": path, "@odata.type": "#Role.v1_3_1.Role", "Id": name, "Name": name + " Role",
			"RoleId": name, "IsPredefined": true, "AssignedPrivileges": rfRolePrivileges[name]})
	default:
		rfError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI "+r.URL.Path+" was not found.")
	}
}

const (
	rfAccountService = rfRoot + "/AccountService"
	rfAccounts       = rfAccountService + "/Accounts"
	rfAdminAccount   = rfAccounts + "/1"
	rfRoles          = rfAccountService + "/Roles"
)

// The predefined roles of DSP0266 and their privileges.
var (
	rfRoleNames      = []string{"Administrator", "Operator", "ReadOnly"}
	rfRolePrivileges = map[string][]string{
		"Administrator": {"Login", "ConfigureManager", "ConfigureUsers", "ConfigureSelf", "ConfigureComponents"},
		"Operator":      {"Login", "ConfigureSelf", "ConfigureComponents"},
		"ReadOnly":      {"Login", "ConfigureSelf"},
	}
)

func rfRoleName(path string) string {
	name, ok := strings.CutPrefix(path, rfRoles+"/")
	if !ok {
		return ""
	}
	if _, ok := rfRolePrivileges[name]; ok {
		return name
	}
	return ""
}

func (s *rfService) hasSession(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sid := range s.tokens {
		if sid == id {
			return true
		}
	}
	return false
}

// odata is the OData service document (/redfish/v1/odata).
func (s *rfService) odata() obj {
	var v []any
	for _, e := range [][2]string{{"Service", rfRoot + "/"}, {"Systems", rfRoot + "/Systems"}, {"Managers", rfRoot + "/Managers"},
		{"SessionService", rfRoot + "/SessionService"}, {"AccountService", rfAccountService}, {"Sessions", rfSessions}} {
		v = append(v, obj{"name": e[0], "kind": "Singleton", "url": e[1]})
	}
	return obj{"@odata.context": rfRoot + "/$metadata", "value": v}
}

// rfMetadata is the CSDL of the resources the simulator serves.
var rfMetadata = func() string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
`)
	for _, r := range [][2]string{{"ServiceRoot", "v1_11_0"}, {"SessionService", "v1_1_8"}, {"Session", "v1_3_0"}, {"SessionCollection", ""},
		{"ComputerSystem", "v1_13_0"}, {"ComputerSystemCollection", ""}, {"Manager", "v1_10_0"}, {"ManagerCollection", ""},
		{"AccountService", "v1_10_0"}, {"ManagerAccount", "v1_8_0"}, {"ManagerAccountCollection", ""}, {"Role", "v1_3_1"}, {"RoleCollection", ""}} {
		fmt.Fprintf(&b, "  <edmx:Reference Uri=\"http://redfish.dmtf.org/schemas/v1/%s_v1.xml\">\n    <edmx:Include Namespace=\"%s\"/>\n", r[0], r[0])
		if r[1] != "" {
			fmt.Fprintf(&b, "    <edmx:Include Namespace=\"%s.%s\"/>\n", r[0], r[1])
		}
		b.WriteString("  </edmx:Reference>\n")
	}
	b.WriteString(`  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">
      <EntityContainer Name="Service" Extends="ServiceRoot.v1_11_0.ServiceContainer"/>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
`)
	return b.String()
}()

func (s *rfService) serviceRoot() obj {
	root := obj{
		"@odata.id": rfRoot, "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot", "Id": "RootService", "Name": "Root Service",
		"RedfishVersion": "1.11.0", "UUID": s.b.GUID().String(),
		"Vendor":         s.b.vendor.Name,
		"Systems":        obj{"@odata.id": rfRoot + "/Systems"},
		"Managers":       obj{"@odata.id": rfRoot + "/Managers"},
		"AccountService": obj{"@odata.id": rfAccountService},
	}
	if s.isEM() {
		root["Chassis"] = obj{"@odata.id": rfChassis}
	}
	if !s.b.faultSet().RedfishNoSessions {
		root["SessionService"] = obj{"@odata.id": rfRoot + "/SessionService"}
		root["Links"] = obj{"Sessions": obj{"@odata.id": rfSessions}}
	}
	return root
}

func (s *rfService) system() obj {
	b := s.b
	power := "Off"
	if b.power.Load() {
		power = "On"
	}
	led := [...]string{"Off", "Blinking", "Lit"}[b.identifyState()]
	return obj{
		"@odata.id": rfSystem, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem", "Id": "1", "Name": b.name,
		"SystemType": "Physical", "Manufacturer": b.vendor.Name, "Model": fmt.Sprintf("Simulated %s 0x%04x", b.vendor.Name, b.vendor.ProductID),
		"SerialNumber": fmt.Sprintf("SIM%08X", uint32(mix(b.f.seed, uint64(b.index), saltGUID))),
		"UUID":         b.GUID().String(), "PowerState": power, "BiosVersion": "SIM-" + b.vendor.Firmware,
		"IndicatorLED": led, "LocationIndicatorActive": led != "Off",
		"Status":  obj{"State": "Enabled", "Health": "OK"},
		"Actions": obj{"#ComputerSystem.Reset": obj{"target": rfReset, "ResetType@Redfish.AllowableValues": rfResetTypes}},
		"Links":   obj{"ManagedBy": []any{obj{"@odata.id": rfManager}}},
	}
}

func (s *rfService) patchSystem(w http.ResponseWriter, r *http.Request) {
	var body struct {
		IndicatorLED            *string
		LocationIndicatorActive *bool
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		rfError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", "The request body is not valid JSON.")
		return
	}
	switch {
	case body.LocationIndicatorActive != nil:
		s.b.setIdentify(map[bool]uint8{true: 0xFF, false: 0}[*body.LocationIndicatorActive])
	case body.IndicatorLED != nil:
		switch *body.IndicatorLED {
		case "Off":
			s.b.setIdentify(0)
		case "Lit", "Blinking":
			s.b.setIdentify(0xFF)
		default:
			rfError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", "IndicatorLED must be Off, Lit or Blinking.")
			return
		}
	}
	rfJSON(w, http.StatusOK, s.system())
}

func (s *rfService) reset(w http.ResponseWriter, r *http.Request) {
	var body struct{ ResetType string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		rfError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", "The request body is not valid JSON.")
		return
	}
	p := &s.b.power
	switch body.ResetType {
	case "On":
		p.Store(true)
	case "ForceOff":
		p.Store(false)
	case "GracefulShutdown":
		if !s.b.faultSet().SoftOffIgnored { // the OS may ignore the power button
			p.Store(false)
		}
	case "PowerCycle":
		p.Store(true)
	case "GracefulRestart", "ForceRestart", "Nmi", "":
		// the host reboots (or gets an NMI): power stays as it is
	default:
		rfError(w, http.StatusBadRequest, "Base.1.8.ActionParameterNotSupported",
			fmt.Sprintf("ResetType %q is not one of %s.", body.ResetType, strings.Join(rfResetTypes, ", ")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// credentialsOK checks the admin account as the IPMI side has it.
func (s *rfService) credentialsOK(user, pw string) bool {
	f := s.b.faultSet()
	if f.UserRemoved || f.Locked || user != AdminUser {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(pw), s.b.adminPassword(f)) == 1
}

func (s *rfService) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ UserName, Password string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		rfError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", "The request body is not valid JSON.")
		return
	}
	if !s.credentialsOK(body.UserName, body.Password) {
		s.unauthorized.Add(1)
		rfError(w, http.StatusUnauthorized, "Base.1.8.InsufficientPrivilege", "Invalid user name or password.")
		return
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	s.mu.Lock()
	if limit := s.b.faultSet().RedfishSessionLimit; limit > 0 && len(s.tokens) >= limit {
		s.mu.Unlock()
		s.busy.Add(1)
		rfError(w, http.StatusServiceUnavailable, "Base.1.8.SessionLimitExceeded",
			"The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.")
		return
	}
	s.nextID++
	id := fmt.Sprintf("%d", s.nextID)
	s.tokens[token] = id
	s.maxOpen = max(s.maxOpen, len(s.tokens))
	if s.origin == nil {
		s.origin = map[string]string{}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		s.origin[id] = ap.Addr().String()
	}
	s.mu.Unlock()
	s.opened.Add(1)
	loc := rfSessions + "/" + id
	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", loc)
	rfJSON(w, http.StatusCreated, obj{"@odata.id": loc, "@odata.type": "#Session.v1_3_0.Session", "Id": id, "Name": "User Session", "UserName": body.UserName})
}

func (s *rfService) logout(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, sid := range s.tokens {
		if sid == id {
			delete(s.tokens, tok)
			delete(s.origin, id)
			s.closedN.Add(1)
			return true
		}
	}
	return false
}

// authorize accepts a session token or basic authentication.
func (s *rfService) authorize(r *http.Request) (string, bool) {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		s.mu.Lock()
		id, ok := s.tokens[tok]
		s.mu.Unlock()
		return id, ok
	}
	if u, p, ok := r.BasicAuth(); ok && !s.b.faultSet().RedfishNoBasic && s.credentialsOK(u, p) {
		return "", true
	}
	return "", false
}

func collection(id, typ, name string, members []any) obj {
	if members == nil {
		members = []any{}
	}
	return obj{"@odata.id": id, "@odata.type": typ, "Name": name, "Members@odata.count": len(members), "Members": members}
}

// rfJSON writes v as JSON with the headers DSP0266 asks of a resource: a
// Link to its schema (rel=describedby, the version of its @odata.type) and
// an ETag of its representation.
func rfJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if o, ok := v.(obj); ok && code < 300 {
		if t, _ := o["@odata.type"].(string); t != "" {
			// "#ComputerSystem.v1_13_0.ComputerSystem" → ComputerSystem.v1_13_0.json
			parts := strings.Split(strings.TrimPrefix(t, "#"), ".")
			name := parts[0]
			if len(parts) == 3 {
				name += "." + parts[1]
			}
			h.Set("Link", "<https://redfish.dmtf.org/schemas/v1/"+name+".json>; rel=describedby")
		}
		sum := sha256.Sum256(b)
		h.Set("ETag", `W/"`+hex.EncodeToString(sum[:8])+`"`)
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func rfError(w http.ResponseWriter, code int, id, msg string) {
	rfJSON(w, code, obj{"error": obj{"code": id, "message": msg,
		"@Message.ExtendedInfo": []any{obj{"MessageId": id, "Message": msg, "Severity": "Critical"}}}})
}
