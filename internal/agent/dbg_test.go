package agent_test

import (
	"log/slog"
	"os"
)

// dbgLogger logs both sides of the agent channel to stderr when
// LIGHTSOUT_TEST_DEBUG=1 (for a failing test), and nowhere otherwise.
func dbgLogger() *slog.Logger {
	if os.Getenv("LIGHTSOUT_TEST_DEBUG") != "1" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
