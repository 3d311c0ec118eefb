package ipmi

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/poll"
)

// TestToken: the per-BMC semaphore admits one holder; a waiter gives up at
// its limit (ErrNoResponse) or with its context; release hands the token
// to waiters in arrival order.
func TestToken(t *testing.T) {
	var tk token
	ctx := context.Background()
	if err := tk.acquire(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tk.acquire(ctx, time.Millisecond); !errors.Is(err, ErrNoResponse) {
		t.Errorf("held, limit passed: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := tk.acquire(cctx, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("held, cancelled: %v", err)
	}
	// Three waiters, queued in turn; each takes the token on release.
	order := make(chan int, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tk.acquire(ctx, 0); err != nil {
				t.Error(err)
				return
			}
			order <- i
			tk.release()
		}()
		// Wait until it is queued before the next one comes.
		poll.Until(t, 5*time.Second, "waiter queued", func() bool {
			tk.mu.Lock()
			defer tk.mu.Unlock()
			return len(tk.waiters) == i+1
		})
	}
	tk.release()
	wg.Wait()
	close(order)
	want := 0
	for i := range order {
		if i != want {
			t.Errorf("waiter %d got the token in turn %d", i, want)
		}
		want++
	}
	if tk.held || tk.waiters != nil {
		t.Errorf("after all: held %v, waiters %d", tk.held, len(tk.waiters))
	}
}

// TestTokenOneHolder: many callers, some giving up while the token is
// being handed to them, never hold it two at once, and it ends free.
func TestTokenOneHolder(t *testing.T) {
	var tk token
	var holders, most atomic.Int32
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration((g+i)%4)*50*time.Microsecond)
				err := tk.acquire(ctx, 0)
				cancel()
				if err != nil {
					continue
				}
				n := holders.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				holders.Add(-1)
				tk.release()
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d holders at once", most.Load())
	}
	if err := tk.acquire(context.Background(), time.Millisecond); err != nil || len(tk.waiters) != 0 {
		t.Errorf("not free at the end: %v, %d waiters", err, len(tk.waiters))
	}
}
