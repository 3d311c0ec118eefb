package proc

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPUSeconds is a process's CPU time so far (user + system, all threads),
// from /proc/PID/stat.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which is in parentheses).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// MemInfo is a process's memory from /proc/PID/status, in KiB, its
// threads and its open file descriptors.
type MemInfo struct {
	RSS, HWM                   int64 // VmRSS, VmHWM
	RssAnon, RssFile, RssShmem int64 // status
	Threads                    int64
	FDs                        int
}

// ReadMem reads a process's MemInfo.
func ReadMem(pid int) (MemInfo, error) {
	var m MemInfo
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	fields := map[string]*int64{
		"VmRSS": &m.RSS, "VmHWM": &m.HWM,
		"RssAnon": &m.RssAnon, "RssFile": &m.RssFile, "RssShmem": &m.RssShmem,
		"Threads": &m.Threads,
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		if p, ok := fields[k]; ok {
			*p = n
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		m.FDs = len(ents)
	}
	return m, sc.Err()
}

// RunSeconds is a process's time on a CPU so far, summed over its threads
// (/proc/PID/task/*/schedstat, in nanoseconds): unlike CPUSeconds, not
// rounded to USER_HZ ticks, so it can be summed over hundreds of processes
// that each run for less than a tick.
func RunSeconds(pid int) (float64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %q", dir, t.Name(), f[0])
		}
		ns += v
	}
	return ns / 1e9, nil
}
