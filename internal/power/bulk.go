package power

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Result of one machine's operation.
type Result struct {
	Machine string `json:"machine"`
	Action  Action `json:"action"`
	Result  string `json:"result"` // ok | refused | failed
	Power   string `json:"power,omitempty"`
	Message string `json:"message,omitempty"`
	// Batch is the 1-based batch the machine ran in.
	Batch     int     `json:"batch"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

// Outcome names of Result.Result.
const (
	ResultOK      = "ok"
	ResultRefused = "refused"
	ResultFailed  = "failed"
)

// Item is one machine's part of a bulk operation: Run calls Do for it (Do
// does the gating and the I/O).
type Item struct {
	Machine string
	Do      func(ctx context.Context) (power string, err error)
}

// Stagger bounds a bulk operation: Batch machines at once, then Interval of
// rest before the next batch. Batch 0 means all at once.
type Stagger struct {
	Batch    int
	Interval time.Duration
}

// Run performs the items in batches and calls progress (from one goroutine
// at a time) with each result as it completes. It returns the results in
// item order. Cancelling ctx stops starting new batches; items not started
// are reported failed with the context's error.
func Run(ctx context.Context, a Action, items []Item, s Stagger, progress func(Result)) []Result {
	res := make([]Result, len(items))
	batch := s.Batch
	if batch <= 0 || batch > len(items) {
		batch = len(items)
	}
	var mu sync.Mutex
	report := func(i int, r Result) {
		mu.Lock()
		defer mu.Unlock()
		res[i] = r
		if progress != nil {
			progress(r)
		}
	}
	n := 0
	for start := 0; start < len(items); start += batch {
		n++
		if start > 0 && s.Interval > 0 {
			t := time.NewTimer(s.Interval)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		end := min(start+batch, len(items))
		if ctx.Err() != nil {
			for i := start; i < end; i++ {
				report(i, Result{Machine: items[i].Machine, Action: a, Result: ResultFailed, Batch: n,
					Message: "not started: " + ctx.Err().Error()})
			}
			continue
		}
		var wg sync.WaitGroup
		for i := start; i < end; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				p, err := items[i].Do(ctx)
				r := Result{Machine: items[i].Machine, Action: a, Result: ResultOK, Power: p, Batch: n,
					ElapsedMS: float64(time.Since(t0).Microseconds()) / 1000}
				switch {
				case errors.Is(err, ErrRefused):
					r.Result, r.Message = ResultRefused, err.Error()
				case err != nil:
					r.Result, r.Message = ResultFailed, err.Error()
				}
				report(i, r)
			}()
		}
		wg.Wait()
	}
	return res
}
