package manager_test

import (
	"os"
	"testing"

	"github.com/lightsout/lightsout/internal/store/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster pgtest may have started.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestManagerPostgres(t *testing.T) { testManager(t, pgtest.DSN(t), "127.79.1.1") }
