package gather

import "context"

// Progress is one step of a running diagnosis, told as it happens (the
// console shows the steps while a silent blade's diagnosis waits on its
// timeouts). Step 0 is the fresh check of the channel; then each fact the
// trees ask for, from 1, in order.
type Progress struct {
	Machine   string `json:"machine"`
	AccountID int64  `json:"account_id"`
	Step      int    `json:"step"`
	Need      Need   `json:"need,omitempty"` // "" for step 0
	Done      bool   `json:"done"`           // false when the step starts, true when it ends
}

type progressKey struct{}

// WithProgress returns a context under which Executor.Run tells fn of each
// step as it starts and ends. fn may be called from several goroutines
// (one per channel diagnosed) and must not block for long.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

func progress(ctx context.Context, p Progress) {
	if fn, _ := ctx.Value(progressKey{}).(func(Progress)); fn != nil {
		fn(p)
	}
}
