package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bench/internal/proc"
	"github.com/lightsout/lightsout/bench/internal/progress"
)

// serverProc is a running `lightsout server`, a separate process in its own
// process group.
type serverProc struct {
	*proc.Child
	base      string // http://127.0.0.1:PORT
	readyLine string
	ready     time.Time // ready line seen (the monitor runs from here)
	errPath   string
}

var listenRE = regexp.MustCompile(`metrics on (http://\S+)/metrics`)

// startServer starts `lightsout server --data dataDir --listen
// 127.0.0.1:0 --interval interval` and waits for its ready line.
func startServer(bin, dataDir, logPrefix string, interval time.Duration, extraEnv []string, readyTimeout time.Duration) (*serverProc, error) {
	argv := []string{bin, "server", "--data", dataDir, "--listen", "127.0.0.1:0", "--interval", interval.String()}
	progress.Logf("starting server: %s", strings.Join(argv[1:], " "))
	p := &serverProc{errPath: logPrefix + ".stderr"}
	c, err := running.Start(proc.Spec{
		Argv: proc.Pinned(pin.CPU(serverCPU), argv), Env: childEnv(extraEnv...),
		Name: "lightsout server", Desc: "the server",
		Stdout: logPrefix + ".stdout", Stderr: p.errPath,
		Ready: "metrics on http://",
	})
	if err != nil {
		return nil, err
	}
	p.Child = c
	line, err := c.WaitReady(readyTimeout, "the server", func() { p.stop(15 * time.Second) })
	if err != nil {
		return nil, err
	}
	p.ready = time.Now()
	p.readyLine = line
	if m := listenRE.FindStringSubmatch(line); m != nil {
		p.base = m[1]
	}
	if p.base == "" {
		p.stop(15 * time.Second)
		return nil, fmt.Errorf("the server's ready line names no metrics address: %q", p.readyLine)
	}
	progress.Logf("server ready in %v (pid %d): %s", p.ready.Sub(p.Started).Round(time.Millisecond), p.PID, p.readyLine)
	return p, nil
}

// stop sends SIGTERM to the server's process group (it closes its sessions
// and writes a CPU profile when asked to), and SIGKILL after grace. It
// returns how long the server took to exit.
func (p *serverProc) stop(grace time.Duration) time.Duration {
	if !p.Alive() {
		return 0
	}
	progress.Logf("stopping server (pid %d)", p.PID)
	t := time.Now()
	p.Stop(grace, func() {
		progress.Logf("server (pid %d) still running %v after SIGTERM: killing its process group", p.PID, grace)
	})
	return time.Since(t)
}

// metrics is one scrape of /metrics: every sample by its full series name
// (name{labels} as the server wrote it, labels sorted by the exposition).
type metrics map[string]float64

func (p *serverProc) scrape() (metrics, error) {
	cl := &http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Get(p.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format (no timestamps expected).
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// get is the sample name{labels}; labels given as k="v" pairs in the order
// the server writes them (alphabetical).
func (m metrics) get(name string, labels ...string) (float64, bool) {
	key := name
	if len(labels) > 0 {
		key += "{" + strings.Join(labels, ",") + "}"
	}
	v, ok := m[key]
	return v, ok
}

// byLabel returns name's samples keyed by the value of label.
func (m metrics) byLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	prefix := name + "{"
	for k, v := range m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if val, ok := labelValue(k[len(name):], label); ok {
			out[val] += v
		}
	}
	return out
}

func labelValue(labels, label string) (string, bool) {
	needle := label + `="`
	i := strings.Index(labels, needle)
	if i < 0 || (i > 0 && labels[i-1] != '{' && labels[i-1] != ',') {
		return "", false
	}
	rest := labels[i+len(needle):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// histogram is a Prometheus histogram's cumulative buckets.
type histogram struct {
	les    []float64 // upper bounds, +Inf last
	counts []float64 // cumulative
	sum    float64
	count  float64
}

func (m metrics) histogram(name string) (histogram, bool) {
	var h histogram
	type b struct{ le, n float64 }
	var bs []b
	for k, v := range m {
		if !strings.HasPrefix(k, name+"_bucket{") {
			continue
		}
		les, ok := labelValue(k[len(name+"_bucket"):], "le")
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(les, 64)
		if err != nil {
			continue
		}
		bs = append(bs, b{le, v})
	}
	if len(bs) == 0 {
		return h, false
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	for _, x := range bs {
		h.les = append(h.les, x.le)
		h.counts = append(h.counts, x.n)
	}
	h.sum, _ = m.get(name + "_sum")
	h.count, _ = m.get(name + "_count")
	return h, true
}

// sub is h − o: the observations made between two scrapes.
func (h histogram) sub(o histogram) histogram {
	d := histogram{les: h.les, counts: make([]float64, len(h.counts)), sum: h.sum - o.sum, count: h.count - o.count}
	for i := range h.counts {
		d.counts[i] = h.counts[i]
		if i < len(o.counts) && o.les[i] == h.les[i] {
			d.counts[i] -= o.counts[i]
		}
	}
	return d
}

// quantile interpolates linearly inside the bucket the quantile falls in,
// like PromQL's histogram_quantile, and returns that bucket's bounds too.
func (h histogram) quantile(q float64) (v, lo, hi float64) {
	if len(h.counts) == 0 || h.counts[len(h.counts)-1] == 0 {
		return math.NaN(), 0, 0
	}
	total := h.counts[len(h.counts)-1]
	rank := q * total
	for i, c := range h.counts {
		if c >= rank {
			lo = 0
			prev := 0.0
			if i > 0 {
				lo, prev = h.les[i-1], h.counts[i-1]
			}
			hi = h.les[i]
			if math.IsInf(hi, 1) {
				return lo, lo, hi // beyond the largest finite bound
			}
			if c == prev {
				return hi, lo, hi
			}
			return lo + (hi-lo)*(rank-prev)/(c-prev), lo, hi
		}
	}
	return math.NaN(), 0, 0
}

// dataDirSize is the size of the files in dir (the database and its WAL).
func dataDirSize(dir string) (int64, string) {
	var total int64
	var parts []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		total += fi.Size()
		if strings.HasPrefix(e.Name(), "lightsout.db") {
			parts = append(parts, fmt.Sprintf("%s %.1f MiB", e.Name(), float64(fi.Size())/(1<<20)))
		}
	}
	return total, strings.Join(parts, ", ")
}
