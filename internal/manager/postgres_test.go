package manager_test

import (
	"os"
	"testing"

	"github.com/lightsout/lightsout/internal/store/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster pgtest may have started.
// As an agent's shutdown command (fallback_test.go) it powers the
// simulated host off instead.
func TestMain(m *testing.M) {
	if code, ok := simPowerOffChild(); ok {
		os.Exit(code)
	}
	os.Exit(pgtest.Main(m))
}

func TestManagerPostgres(t *testing.T) { testManager(t, pgtest.DSN(t)) }
