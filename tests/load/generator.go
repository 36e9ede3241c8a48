package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadSpec says how much load one phase drives.
type loadSpec struct {
	concurrency int
	duration    time.Duration // used when requests is 0
	requests    int64
	rate        float64 // requests/s, open loop; 0 is closed loop
}

func (s loadSpec) String() string {
	size := s.duration.String()
	if s.requests > 0 {
		size = fmt.Sprintf("%d requests", s.requests)
	}
	if s.rate > 0 {
		return fmt.Sprintf("open loop at %.0f req/s, up to %d in flight, %s", s.rate, s.concurrency, size)
	}
	return fmt.Sprintf("closed loop, concurrency %d, %s", s.concurrency, size)
}

// generator sends the run's requests to one server. Its request counter runs
// across phases and scenarios, so no delivery id is ever sent twice.
type generator struct {
	addr  string            // host:port of the server
	paths map[string]string // provider -> path
	mix   *bodyMix

	// conns are the workers' connections, kept from one phase to the next:
	// worker i of every phase sends on conns[i].
	mu    sync.Mutex
	conns []*clientConn

	seq      *atomic.Uint64
	sent, ok atomic.Int64 // every phase, probes included: what a sink must have stored
}

// newGenerator sends to baseURL, an http:// address (host:port, no path).
func newGenerator(mix *bodyMix, seq *atomic.Uint64, baseURL string, paths map[string]string) *generator {
	return &generator{
		addr:  strings.TrimPrefix(baseURL, "http://"),
		paths: paths,
		mix:   mix,
		seq:   seq,
	}
}

// workerConns returns the connections of n workers, opening none yet.
func (g *generator) workerConns(n int) []*clientConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.conns) < n {
		g.conns = append(g.conns, newClientConn(g.addr))
	}
	return g.conns[:n]
}

func (g *generator) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.close()
	}
}

// send posts the next request of the mix on c and returns its provider and
// status code, or the transport error.
func (g *generator) send(ctx context.Context, c *clientConn) (string, int, error) {
	n := g.seq.Add(1) - 1
	t, body := g.mix.body(n)
	var name, value string
	switch t.provider {
	case "controlshift":
		name, value = "Authorization", g.mix.basicAuth
	case "thecity":
		name, value = "X-City-Webhook-Signature", g.mix.citySignature(body)
	}
	g.sent.Add(1)
	status, err := c.post(ctx, g.paths[t.provider], name, value, body)
	if err != nil {
		return t.provider, 0, err
	}
	if status == http.StatusOK {
		g.ok.Add(1)
	}
	return t.provider, status, nil
}

// phaseResult is what one phase measured.
type phaseResult struct {
	elapsed   time.Duration
	sent      int64
	ok        int64
	latencies []time.Duration // sorted ascending, every request
	statuses  map[int]int64   // non-200 replies by status
	transport map[string]int64
}

func (r *phaseResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.sent) / r.elapsed.Seconds()
}

// add returns the sum of r and o, two phases of the same scenario: their
// requests, time and errors added, their latencies merged in order. A nil r
// is an empty phase.
func (r *phaseResult) add(o *phaseResult) *phaseResult {
	sum := &phaseResult{statuses: map[int]int64{}, transport: map[string]int64{}}
	for _, p := range []*phaseResult{r, o} {
		if p == nil {
			continue
		}
		sum.elapsed += p.elapsed
		sum.sent += p.sent
		sum.ok += p.ok
		for c, n := range p.statuses {
			sum.statuses[c] += n
		}
		for k, n := range p.transport {
			sum.transport[k] += n
		}
	}
	var a, b []time.Duration
	if r != nil {
		a = r.latencies
	}
	if o != nil {
		b = o.latencies
	}
	sum.latencies = make([]time.Duration, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] <= b[0] {
			sum.latencies, a = append(sum.latencies, a[0]), a[1:]
		} else {
			sum.latencies, b = append(sum.latencies, b[0]), b[1:]
		}
	}
	sum.latencies = append(append(sum.latencies, a...), b...)
	return sum
}

// percentile is the nearest-rank percentile of the recorded latencies: the
// smallest value that at least q of the requests did not exceed.
func (r *phaseResult) percentile(q float64) time.Duration {
	n := len(r.latencies)
	if n == 0 {
		return 0
	}
	// Integer ceil(q·n) in parts per million: float rounding would put
	// p99 of 100 values at the 100th.
	ppm := int64(math.Round(q * 1e6))
	rank := int((ppm*int64(n)+999_999)/1_000_000) - 1
	rank = min(max(rank, 0), n-1)
	return r.latencies[rank]
}

func (r *phaseResult) errorCount() int64 {
	var n int64
	for _, c := range r.statuses {
		n += c
	}
	for _, c := range r.transport {
		n += c
	}
	return n
}

// errorSummary lists errors as "503×12 timeout×1", statuses first.
func (r *phaseResult) errorSummary() string {
	if r.errorCount() == 0 {
		return "-"
	}
	var parts []string
	codes := make([]int, 0, len(r.statuses))
	for c := range r.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, r.statuses[c]))
	}
	kinds := make([]string, 0, len(r.transport))
	for k := range r.transport {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s×%d", k, r.transport[k]))
	}
	out := parts[0]
	for _, p := range parts[1:] {
		out += " " + p
	}
	return out
}

// errorMap is the errors keyed by status code or transport error kind, for JSON.
func (r *phaseResult) errorMap() map[string]int64 {
	m := map[string]int64{}
	for c, n := range r.statuses {
		m[fmt.Sprint(c)] = n
	}
	for k, n := range r.transport {
		m[k] = n
	}
	return m
}

// workerStats is one worker's share, merged when the phase ends so the hot
// path shares nothing but the request counter.
type workerStats struct {
	sent, ok  int64
	latencies []time.Duration
	statuses  map[int]int64
	transport map[string]int64
}

func (w *workerStats) record(status int, err error, d time.Duration) {
	w.sent++
	w.latencies = append(w.latencies, d)
	switch {
	case err != nil:
		if w.transport == nil {
			w.transport = map[string]int64{}
		}
		w.transport[transportKind(err)]++
	case status == http.StatusOK:
		w.ok++
	default:
		if w.statuses == nil {
			w.statuses = map[int]int64{}
		}
		w.statuses[status]++
	}
}

func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn-refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "conn-reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errMalformedReply):
		return "malformed-reply"
	default:
		return "transport-error"
	}
}

// run drives one phase. Closed loop: each worker sends its next request as
// soon as the previous one is answered, and latency is the request's own
// round trip. Open loop: requests are due at fixed intervals whether or not
// earlier ones were answered, and latency counts from the moment a request
// was due, so a stalled server shows in the percentiles instead of quietly
// slowing the sender down.
func (g *generator) run(ctx context.Context, spec loadSpec) *phaseResult {
	workers := make([]workerStats, spec.concurrency)
	conns := g.workerConns(spec.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	if spec.rate > 0 {
		g.runOpen(ctx, spec, workers, conns, &wg, start)
	} else {
		g.runClosed(ctx, spec, workers, conns, &wg, start)
	}
	wg.Wait()
	res := &phaseResult{elapsed: time.Since(start), statuses: map[int]int64{}, transport: map[string]int64{}}
	total := 0
	for i := range workers {
		total += len(workers[i].latencies)
	}
	res.latencies = make([]time.Duration, 0, total)
	for i := range workers {
		w := &workers[i]
		res.sent += w.sent
		res.ok += w.ok
		res.latencies = append(res.latencies, w.latencies...)
		for c, n := range w.statuses {
			res.statuses[c] += n
		}
		for k, n := range w.transport {
			res.transport[k] += n
		}
	}
	slices.Sort(res.latencies)
	return res
}

func (g *generator) runClosed(ctx context.Context, spec loadSpec, workers []workerStats, conns []*clientConn, wg *sync.WaitGroup, start time.Time) {
	deadline := start.Add(spec.duration)
	var tickets atomic.Int64
	for i := range workers {
		w, c := &workers[i], conns[i]
		w.latencies = make([]time.Duration, 0, 4096)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if spec.requests > 0 {
					if tickets.Add(1) > spec.requests {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				t0 := time.Now()
				_, status, err := g.send(ctx, c)
				w.record(status, err, time.Since(t0))
			}
		}()
	}
}

func (g *generator) runOpen(ctx context.Context, spec loadSpec, workers []workerStats, conns []*clientConn, wg *sync.WaitGroup, start time.Time) {
	// Due times queue here when every worker is busy; the queue is sized for
	// a few seconds of backlog so the scheduler itself rarely waits.
	due := make(chan time.Time, max(int(spec.rate*4), 1024))
	interval := time.Duration(float64(time.Second) / spec.rate)
	total := spec.requests
	if total == 0 {
		total = int64(spec.duration / interval)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(due)
		var issued int64
		for issued < total && ctx.Err() == nil {
			// Release every request due by now, then sleep a little: sleeping
			// per request would be too coarse at tens of thousands per second.
			now := time.Now()
			for issued < total {
				at := start.Add(time.Duration(issued) * interval)
				if at.After(now) {
					break
				}
				select {
				case due <- at:
				case <-ctx.Done():
					return
				}
				issued++
			}
			time.Sleep(min(interval, time.Millisecond))
		}
	}()
	for i := range workers {
		w, c := &workers[i], conns[i]
		w.latencies = make([]time.Duration, 0, 4096)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range due {
				if ctx.Err() != nil {
					return
				}
				_, status, err := g.send(ctx, c)
				w.record(status, err, time.Since(at))
			}
		}()
	}
}
