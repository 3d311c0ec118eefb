package wire

import "github.com/lightsout/lightsout/internal/audit"

// SecurityAuditRequest names machines and/or a group whose BMCs are
// audited now (POST /api/v1/audit/security).
type SecurityAuditRequest struct {
	Machines []string `json:"machines,omitempty"`
	Group    string   `json:"group,omitempty"`
}

// SecurityAuditResponse holds one result per OOB account: the fresh
// report and its drift, or why it was skipped.
type SecurityAuditResponse struct {
	Results []audit.Result `json:"results"`
}

// SecurityReports lists the latest audit of each OOB account
// (GET /api/v1/security).
type SecurityReports struct {
	Reports []audit.View `json:"reports"`
}
