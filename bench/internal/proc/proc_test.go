package proc

import (
	"github.com/lightsout/lightsout/internal/poll"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func spec(t *testing.T, script string) Spec {
	dir := t.TempDir()
	return Spec{
		Argv: []string{"sh", "-c", script}, Env: os.Environ(),
		Name: "test child", Desc: "the test child",
		Stdout: filepath.Join(dir, "stdout"), Stderr: filepath.Join(dir, "stderr"),
		Ready: "is ready",
	}
}

func TestChildReadyAndStop(t *testing.T) {
	tab := NewTable()
	c, err := tab.Start(spec(t, `echo starting; echo "child is ready"; exec sleep 30`))
	if err != nil {
		t.Fatal(err)
	}
	line, err := c.WaitReady(10*time.Second, "the test child", func() { t.Error("stop called") })
	if err != nil || line != "child is ready" {
		t.Fatalf("WaitReady = %q, %v", line, err)
	}
	if !c.Alive() || c.ExitStatus() != "" {
		t.Fatalf("alive %v, exit status %q", c.Alive(), c.ExitStatus())
	}
	c.Stop(10*time.Second, func() { t.Error("SIGTERM was not enough") })
	if c.Alive() || !strings.Contains(c.ExitStatus(), "terminated") {
		t.Errorf("after Stop: alive %v, exit status %q", c.Alive(), c.ExitStatus())
	}
	if n := tab.KillAll(syscall.SIGKILL); n != 0 {
		t.Errorf("KillAll signalled %d groups; the child had exited", n)
	}
}

func TestChildIgnoresSIGTERM(t *testing.T) {
	tab := NewTable()
	c, err := tab.Start(spec(t, `trap "" TERM; echo "child is ready"; while :; do sleep 0.1; done`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(10*time.Second, "the test child", func() {}); err != nil {
		t.Fatal(err)
	}
	killed := false
	c.Stop(300*time.Millisecond, func() { killed = true })
	if !killed || c.Alive() || !strings.Contains(c.ExitStatus(), "killed") {
		t.Errorf("killed %v, alive %v, exit status %q", killed, c.Alive(), c.ExitStatus())
	}
}

func TestChildExitsBeforeReady(t *testing.T) {
	c, err := NewTable().Start(spec(t, `echo "no luck" >&2; exit 3`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitReady(10*time.Second, "the test child", func() {})
	if err == nil || !strings.Contains(err.Error(), "the test child exited before it was ready (exit status 3): no luck") {
		t.Errorf("err = %v", err)
	}
}

func TestChildNotReadyInTime(t *testing.T) {
	c, err := NewTable().Start(spec(t, `exec sleep 30`))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	_, err = c.WaitReady(100*time.Millisecond, "the test child", func() {
		stopped = true
		c.Stop(5*time.Second, func() {})
	})
	if !stopped || err == nil || !strings.Contains(err.Error(), "the test child was not ready after 100ms: (no output on stderr)") {
		t.Errorf("stopped %v, err = %v", stopped, err)
	}
}

func TestTableKillsLateStarters(t *testing.T) {
	tab := NewTable()
	tab.KillAll(syscall.SIGKILL)
	c, err := tab.Start(spec(t, `echo "child is ready"; exec sleep 30`))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.Stop(time.Second, func() {})
		t.Fatal("a child started after KillAll still runs")
	}
}

func TestPinning(t *testing.T) {
	argv := []string{"lightsout", "sim"}
	if got := Pinned(Pinning{}.CPU("1"), argv); !slices.Equal(got, argv) {
		t.Errorf("unpinned: %q", got)
	}
	if got := Pinned(Pinning{On: true}.CPU("1"), argv); !slices.Equal(got, []string{"taskset", "-c", "1", "lightsout", "sim"}) {
		t.Errorf("pinned: %q", got)
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("LIGHTSOUT_PASSWORD", "secret")
	t.Setenv("LIGHTSOUT_PASSWORD_FILE", "kept")
	env := Env([]string{"LIGHTSOUT_PASSWORD"}, "LC_ALL=C")
	if slices.Contains(env, "LIGHTSOUT_PASSWORD=secret") || !slices.Contains(env, "LIGHTSOUT_PASSWORD_FILE=kept") || env[len(env)-1] != "LC_ALL=C" {
		t.Errorf("env: %q", env)
	}
}

func TestReadings(t *testing.T) {
	if _, err := CPUSeconds(os.Getpid()); err != nil {
		t.Error(err)
	}
	// A child that works briefly, then blocks reading its stdin: its run
	// time is the work, though under a tick.
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; read x")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); cmd.Wait() }()
	var run float64
	poll.Wait(10*time.Second, func() bool {
		run, err = RunSeconds(cmd.Process.Pid)
		return err != nil || run > 0.001
	})
	if err != nil || run <= 0.001 {
		t.Errorf("RunSeconds of a working child = %v, %v", run, err)
	}
	m, err := ReadMem(os.Getpid())
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS || m.Threads < 1 || m.FDs < 3 {
		t.Errorf("ReadMem = %+v, %v", m, err)
	}
	if MachineBusy() <= 0 {
		t.Error("MachineBusy = 0")
	}
	if sys, rel, _, ok := Uname(); !ok || sys == "" || rel == "" {
		t.Errorf("Uname = %q %q %v", sys, rel, ok)
	}
}
