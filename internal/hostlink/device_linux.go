//go:build linux

package hostlink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/open"
)

// devicePath matches the OpenIPMI device names go-ipmi's OpenDevice tries.
var devicePath = regexp.MustCompile(`^/dev/(?:ipmi|ipmi/|ipmidev/)([0-9]{1,3})$`)

// openDevice opens path with go-ipmi's Linux DeviceBackend. A missing
// device wraps os.ErrNotExist.
func openDevice(path string) (Device, error) {
	m := devicePath.FindStringSubmatch(path)
	if m == nil {
		return nil, fmt.Errorf("in-band device %q: not an OpenIPMI device name (/dev/ipmiN)", path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return nil, err
	}
	b := &open.DeviceBackend{}
	if err := b.Connect(context.Background(), int32(n)); err != nil {
		return nil, err
	}
	return &ipmiDevice{b: b}, nil
}

type ipmiDevice struct{ b *open.DeviceBackend }

func (d *ipmiDevice) Send(ctx context.Context, netfn, cmd uint8, data []byte, timeout time.Duration) ([]byte, error) {
	resp, err := d.b.Send(ctx, &open.Request{NetFn: netfn, Cmd: cmd, Data: data}, timeout)
	if err != nil {
		// go-ipmi formats the read deadline's error with %s: its type is
		// lost, so its text is the last resort.
		if errors.Is(err, os.ErrDeadlineExceeded) || strings.Contains(err.Error(), "i/o timeout") {
			return nil, fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return nil, err
	}
	return resp, nil
}

func (d *ipmiDevice) Close() error { return d.b.Close(context.Background()) }
