package proc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// MachineBusy is the CPU time every CPU spent busy so far (user, nice,
// system, irq, softirq, steal; not idle or iowait), in seconds, from
// /proc/stat; 0 when it cannot be read.
func MachineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		v, _ := strconv.ParseFloat(f[i], 64)
		busy += v
	}
	return busy / 100 // USER_HZ
}

// CPUModel is the first "model name" of /proc/cpuinfo, or "".
func CPUModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
		}
	}
	return ""
}

// Uname is the kernel's name, release and hardware ("Linux", "6.8.0-45-
// generic", "x86_64"); ok is false when uname(2) failed.
func Uname() (sysname, release, hardware string, ok bool) {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "", "", "", false
	}
	return utsString(u.Sysname[:]), utsString(u.Release[:]), utsString(u.Machine[:]), true
}

func utsString(a []int8) string {
	var s []byte
	for _, c := range a {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}
