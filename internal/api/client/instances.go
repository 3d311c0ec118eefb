package client

import (
	"context"

	"github.com/lightsout/lightsout/internal/api/wire"
)

// Instances lists the server instances sharing the database.
func (c *Client) Instances(ctx context.Context) (wire.Instances, error) {
	var out wire.Instances
	return out, c.call(ctx, "GET", "/api/v1/instances", nil, nil, &out)
}
