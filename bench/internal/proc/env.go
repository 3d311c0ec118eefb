package proc

import (
	"os"
	"strings"
	"syscall"

	"github.com/lightsout/lightsout/bench/internal/progress"
)

// Pinning places children on CPUs with taskset when On (the benchmarks'
// --pin flag); off, they run anywhere.
type Pinning struct{ On bool }

// CPU is cpu when pinning is on, and "" (anywhere, for Pinned) when off.
func (p Pinning) CPU(cpu string) string {
	if !p.On {
		return ""
	}
	return cpu
}

// Pinned prefixes argv with `taskset -c cpu`, or returns it as it is when
// cpu is "" (no pinning). taskset execs the program in place, so the PID
// and the rusage of the child are the program's own.
func Pinned(cpu string, argv []string) []string {
	if cpu == "" {
		return argv
	}
	return append([]string{"taskset", "-c", cpu}, argv...)
}

// Env is this process's environment without the variables named in drop
// (secrets and settings meant for this process alone), plus extra.
func Env(drop []string, extra ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, name := range drop {
			if strings.HasPrefix(kv, name+"=") {
				continue next
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// RaiseNofile sets the soft RLIMIT_NOFILE to the hard limit, and first
// tries to raise the hard limit to want when want is above it (that needs
// CAP_SYS_RESOURCE; a refusal is logged). Calling Setrlimit ourselves also
// makes Go pass the raised limit on to children (it otherwise restores the
// original soft limit in every child). It returns the soft limit now in
// force, and the error of raising the soft limit.
func RaiseNofile(want uint64) (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if want > rl.Max {
		up := syscall.Rlimit{Cur: want, Max: want}
		err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up)
		if err == nil {
			return want, nil
		}
		progress.Logf("cannot raise the hard RLIMIT_NOFILE from %d to %d: %v (no CAP_SYS_RESOURCE here?)", rl.Max, want, err)
	}
	rl.Cur = rl.Max
	err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	return Nofile(), err
}

// Nofile is the soft RLIMIT_NOFILE in force.
func Nofile() uint64 {
	var rl syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}
