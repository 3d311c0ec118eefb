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
	// Detail says what happened beyond the outcome, e.g. "off after
	// soft-off (12s)" or how an agent fallback went (empty: nothing to
	// add).
	Detail string `json:"detail,omitempty"`
	// Cause names the kind of failure when the error has one (a Causer),
	// e.g. "no_agent" or "still_on" for an agent fallback.
	Cause string `json:"cause,omitempty"`
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
// does the gating and the I/O), or Op when it is set.
type Item struct {
	Machine string
	Do      func(ctx context.Context) (power string, err error)
	// Op is Do with a detail for Result.Detail; it takes precedence.
	Op func(ctx context.Context) (Outcome, error)
}

// Outcome is what an Item's Op reports: the power state afterwards ("on",
// "off" or "") and what happened (Result.Detail).
type Outcome struct {
	Power  string
	Detail string
}

// Causer is an error that names its kind of failure (Result.Cause).
type Causer interface {
	Cause() string
}

func (it Item) run(ctx context.Context) (Outcome, error) {
	if it.Op != nil {
		return it.Op(ctx)
	}
	p, err := it.Do(ctx)
	return Outcome{Power: p}, err
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
				o, err := items[i].run(ctx)
				r := Result{Machine: items[i].Machine, Action: a, Result: ResultOK, Power: o.Power, Detail: o.Detail, Batch: n,
					ElapsedMS: float64(time.Since(t0).Microseconds()) / 1000}
				var c Causer
				if errors.As(err, &c) {
					r.Cause = c.Cause()
				}
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
