package sqlstore

// The model's names, so that the SQL reads as it did inside package store.
// Package store is canonical: these are aliases of its types, constants,
// errors and functions (as os.FileMode is of fs.FileMode); callers outside
// this package use store's names.

import "github.com/lightsout/lightsout/internal/store"

type (
	Account        = store.Account
	Agent          = store.Agent
	AgentCert      = store.AgentCert
	AuditEntry     = store.AuditEntry
	Change         = store.Change
	ChannelState   = store.ChannelState
	Enclosure      = store.Enclosure
	Endpoint       = store.Endpoint
	Event          = store.Event
	EventFilter    = store.EventFilter
	FieldError     = store.FieldError
	ImportRow      = store.ImportRow
	Instance       = store.Instance
	Machine        = store.Machine
	MachineFilter  = store.MachineFilter
	Page           = store.Page
	Profile        = store.Profile
	Role           = store.Role
	SecurityChange = store.SecurityChange
	SecurityReport = store.SecurityReport
	Severity       = store.Severity
	Store          = store.Store
	Token          = store.Token
	Transition     = store.Transition
)

const (
	CertAgent        = store.CertAgent
	CertLink         = store.CertLink
	DefaultZone      = store.DefaultZone
	RoleAdmin        = store.RoleAdmin
	RoleOperator     = store.RoleOperator
	RoleViewer       = store.RoleViewer
	SeverityCritical = store.SeverityCritical
	SeverityInfo     = store.SeverityInfo
	SeverityWarning  = store.SeverityWarning
)

// Errors: the very values of package store, so errors.Is holds either way.
var (
	ErrConflict     = store.ErrConflict
	ErrNoNotify     = store.ErrNoNotify
	ErrNotFound     = store.ErrNotFound
	ErrTokenInvalid = store.ErrTokenInvalid
)

var (
	DefaultPort   = store.DefaultPort
	EndpointOf    = store.EndpointOf
	MatchCode     = store.MatchCode
	ParseSeverity = store.ParseSeverity
	ZoneOf        = store.ZoneOf
)
