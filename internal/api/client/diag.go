package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
)

// Diag diagnoses machines; each calls back with every channel's diagnosis
// as the server streams it. It returns the summary.
func (c *Client) Diag(ctx context.Context, req wire.DiagRequest, each func(manager.DiagResult)) (manager.DiagSummary, error) {
	const path = "/api/v1/diag"
	resp, err := c.do(ctx, "POST", path, nil, req)
	if err != nil {
		return manager.DiagSummary{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var line wire.DiagLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return manager.DiagSummary{}, fmt.Errorf("%s: bad line from the server: %w", path, err)
		}
		switch {
		case line.Summary != nil:
			return *line.Summary, nil
		case line.DiagResult != nil && each != nil:
			each(*line.DiagResult)
		}
	}
	if err := sc.Err(); err != nil {
		return manager.DiagSummary{}, fmt.Errorf("%w: %v", ErrTruncated, err)
	}
	return manager.DiagSummary{}, ErrTruncated
}
