package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/audit"
)

// SecurityReports lists the latest BMC security audits of the machines
// and/or group (every account with neither), with up to history changes
// of findings each.
func (c *Client) SecurityReports(ctx context.Context, machines []string, group string, history int) ([]audit.View, error) {
	v := url.Values{}
	for _, m := range machines {
		v.Add("machine", m)
	}
	setIf(v, "group", group)
	if history > 0 {
		v.Set("history", strconv.Itoa(history))
	}
	var out wire.SecurityReports
	return out.Reports, c.call(ctx, "GET", "/api/v1/security", v, nil, &out)
}

// AuditSecurity audits the machines' (and/or group's) BMCs now.
func (c *Client) AuditSecurity(ctx context.Context, machines []string, group string) ([]audit.Result, error) {
	var out wire.SecurityAuditResponse
	return out.Results, c.call(ctx, "POST", "/api/v1/audit/security", nil, wire.SecurityAuditRequest{Machines: machines, Group: group}, &out)
}
