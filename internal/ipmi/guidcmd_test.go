package ipmi

import (
	"context"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// registryWithGUID is go-ipmi's default registry plus Get System GUID.
func registryWithGUID() *handlers.Registry {
	r := handlers.NewRegistry()
	handlers.RegisterAllHandlers(r)
	r.RegisterFunc(types.Command{ID: 0x37, NetFn: 0x06, Name: "Get System GUID"},
		func(_ context.Context, h *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
			g := h.BMC.GUID
			return g[:], types.CodeOK, nil
		})
	return r
}

// testSuites are the suites both go-ipmi's server and this engine implement.
func testSuites() []types.CipherSuiteID {
	var out []types.CipherSuiteID
	for id := range suites {
		if id != 0 && bmc.SupportedCipherSuite(types.CipherSuiteID(id)) {
			out = append(out, types.CipherSuiteID(id))
		}
	}
	return out
}
