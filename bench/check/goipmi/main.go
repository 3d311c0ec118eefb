// Command goipmi is the benchmark's go-ipmi baseline: go-ipmi's own client,
// one goroutine (and so one socket) per host, doing what a minimal check
// does — connect (RMCP+ session), Get System GUID, Get Chassis Status,
// close. It reads an inventory and prints one line per host and a summary.
// The password comes from LIGHTSOUT_PASSWORD, never the command line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/lightsout/lightsout/internal/inventory"
)

func main() {
	invPath := flag.String("inventory", "", "inventory file")
	timeout := flag.Duration("timeout", 3*time.Second, "per-host deadline")
	flag.Parse()
	inv, err := inventory.Load(*invPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pass := os.Getenv("LIGHTSOUT_PASSWORD")
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, m := range inv.Machines {
		wg.Add(1)
		go func(m inventory.Machine) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			defer cancel()
			c, err := client.NewClient(m.Address, m.EffectivePort(), m.User, pass)
			if err == nil {
				c = c.WithCipherSuiteID(types.CipherSuiteID3).WithTimeout(time.Second).WithRetry(2)
				err = c.Connect(ctx)
			}
			var line string
			if err == nil {
				var g, s any
				g, err = c.GetSystemGUID(ctx)
				if err == nil {
					s, err = c.GetChassisStatus(ctx)
				}
				_ = c.Close(ctx)
				_, _ = g, s
			}
			if err != nil {
				failed.Add(1)
				line = fmt.Sprintf("%s: error: %v", m.Name, err)
			} else {
				ok.Add(1)
				line = m.Name + ": ok"
			}
			mu.Lock()
			fmt.Println(line)
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "goipmi: %d ok, %d failed\n", ok.Load(), failed.Load())
}
