package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scenarioDef is one server setup the load runs against.
type scenarioDef struct {
	key   string
	title string
	// bare runs tests/load/bare instead of hookpipe.
	bare bool
	// config is the hookpipe config, a file in tests/load/configs.
	config string
	// paths maps a provider to the path its requests are sent to.
	paths map[string]string
	// sink prepares the service the scenario writes to; nil when it writes
	// nowhere.
	sink func(testing.TB) *sink
}

var hookpipePaths = map[string]string{
	"controlshift": "/webhooks/controlshift",
	"thecity":      "/webhooks/thecity",
}

var scenarioDefs = []scenarioDef{
	{key: "a", title: "bare net/http, reads body, 200 (ceiling)", bare: true, paths: hookpipePaths},
	{key: "b", title: "stock engine: http_server → mapping → drop", config: "b_stock.yaml", paths: hookpipePaths},
	{key: "c", title: "hookpipe quickstart pipeline → drop", config: "c_hookpipe_drop.yaml", paths: hookpipePaths},
	{key: "d", title: "hookpipe quickstart pipeline → Postgres", config: "d_hookpipe_postgres.yaml", paths: hookpipePaths, sink: postgresSink},
	{key: "e", title: "hookpipe quickstart pipeline → Kafka", config: "e_hookpipe_kafka.yaml", paths: hookpipePaths, sink: kafkaSink},
}

func scenarioByKey(key string) (scenarioDef, bool) {
	for _, d := range scenarioDefs {
		if d.key == key {
			return d, true
		}
	}
	return scenarioDef{}, false
}

// Scenario outcomes.
const (
	statusOK      = "ok"
	statusSkipped = "skipped" // its service could not be had
	statusFailed  = "failed"  // the server did not run, or a 200 was not stored
)

// result is one scenario's figures, as printed and as written with -json.
type result struct {
	Key      string           `json:"key"`
	Title    string           `json:"title"`
	Status   string           `json:"status"`
	Reason   string           `json:"reason,omitempty"`
	Load     string           `json:"load"`
	Requests int64            `json:"requests"`
	OK       int64            `json:"ok"`
	Errors   map[string]int64 `json:"errors"`
	RPS      float64          `json:"requests_per_second"`
	P50Ms    float64          `json:"p50_ms"`
	P99Ms    float64          `json:"p99_ms"`
	P999Ms   float64          `json:"p999_ms"`
	MaxMs    float64          `json:"max_ms"`
	// PeakRSSMiB is the server's VmHWM at the end of the run (warm-up included).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// ServerCPUSeconds is the server's user+system CPU time during the
	// measured phase.
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	// PerCPUSecond is requests per server CPU-second during the measured phase.
	PerCPUSecond float64 `json:"requests_per_server_cpu_second"`
	// SinkCPUSeconds is the CPU time of the sink's local processes
	// (Postgres, kfake) during the measured phase.
	SinkCPUSeconds float64 `json:"sink_cpu_seconds,omitempty"`
	// LoadCPUSeconds is the load generator's own CPU time (this process)
	// during the measured phase.
	LoadCPUSeconds float64 `json:"load_cpu_seconds"`
	// MachineBusy is the share of the machine's CPU time (all CPUs) that
	// was busy during the measured phase, 0 to 1: near 1, the server, the
	// sink and the load generator together used the whole machine.
	MachineBusy float64 `json:"machine_busy"`
	// BatchSize is the mean number of requests the webhook input gathered
	// into one message batch during the measured phase (hookpipe only).
	BatchSize float64 `json:"mean_batch_size,omitempty"`
	// BatchHeldMs is the mean time from the input handing a batch over (the
	// engine starts the clock before the pipeline takes it) to its
	// acknowledgement, and BatchWriteMs the mean time an output took for a
	// successful write of one (all of it: args mapping, the driver, the
	// database and waiting for a core; a switch output's cases, dead letters
	// included, averaged together), from the server's own timers.
	BatchHeldMs  float64       `json:"mean_batch_held_ms,omitempty"`
	BatchWriteMs float64       `json:"mean_batch_write_ms,omitempty"`
	Stored       *verification `json:"stored,omitempty"`

	errorText string
}

// verification compares what a sink holds with what was answered 200 over
// the whole scenario (readiness probes and warm-up included).
type verification struct {
	Sent     int64  `json:"sent"`
	Accepted int64  `json:"accepted_200"`
	Stored   int64  `json:"stored"`
	Detail   string `json:"detail"`
	Equal    bool   `json:"equal"`
}

// runner holds what every scenario of a run shares.
type runner struct {
	opts        options
	repo        string
	hookpipeBin string
	bareBin     string
	pinned      bool
	cred        credentials
	mix         *bodyMix
	seq         atomic.Uint64 // request counter across the run: delivery ids never repeat
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// liveScenario is a scenario whose sink and server are up and accepting:
// measured in one phase, or in slices taking turns with other scenarios.
type liveScenario struct {
	def        scenarioDef
	res        *result
	tb         *serviceTB
	sk         *sink
	srv        *serverProc
	gen        *generator
	metricsURL string
	profileURL string
	batches    batchCounts // the input's batches and requests during the measured phases

	// What the measured phases saw, added up.
	phase                   *phaseResult
	serverCPU, sinkCPU      time.Duration
	loadCPU                 time.Duration
	machineBusy, machineAll int64

	closed bool
}

// phaseFigures are one measured phase's throughput and requests per server
// CPU-second, for the ratios of one slice cycle.
type phaseFigures struct {
	rps, perCPU float64
}

// fail records a failure of the scenario and returns its result.
func (l *liveScenario) fail(format string, args ...any) *result {
	l.res.Status, l.res.Reason = statusFailed, fmt.Sprintf(format, args...)
	return l.res
}

// close stops the server and the sink; once.
func (l *liveScenario) close() {
	if l.closed {
		return
	}
	l.closed = true
	if l.gen != nil {
		l.gen.close()
	}
	if l.srv != nil {
		l.srv.stop()
	}
	l.tb.cleanup()
}

// runScenario runs one scenario on its own: start, warm up, measure for the
// whole spec, verify, tear down.
func (r *runner) runScenario(ctx context.Context, def scenarioDef, spec loadSpec) *result {
	l, failed := r.start(ctx, def)
	if failed != nil {
		return failed
	}
	defer l.close()
	l.res.Load = spec.String()
	if err := r.warm(ctx, l, spec); err != nil {
		return l.fail("%v", err)
	}
	if _, err := r.measure(ctx, l, spec, r.opts.profileDir != ""); err != nil {
		return l.fail("%v", err)
	}
	return r.finish(ctx, l)
}

// start starts the scenario's service and server and waits until the server
// accepts both providers. A service that cannot be had makes the scenario
// skipped; anything else that goes wrong, failed. On failure nothing is left
// running.
func (r *runner) start(ctx context.Context, def scenarioDef) (l *liveScenario, failed *result) {
	l = &liveScenario{def: def, tb: &serviceTB{name: def.key, verbose: r.opts.verbose}}
	l.res = &result{Key: def.key, Title: def.title, Errors: map[string]int64{}}
	defer func() {
		if p := recover(); p != nil {
			su, ok := p.(serviceUnavailable)
			if !ok {
				l.close()
				panic(p)
			}
			l.res.Status, l.res.Reason = statusSkipped, su.reason
		}
		if l.res.Status != "" {
			l.close()
			failed = l.res
		}
	}()
	if def.sink != nil {
		l.sk = def.sink(l.tb)
	}
	addr, err := freeAddr()
	if err != nil {
		return l, l.fail("no free port: %v", err)
	}
	env := []string{
		"CONTROLSHIFT_USERNAME=" + r.cred.csUser,
		"CONTROLSHIFT_PASSWORD=" + r.cred.csPassword,
		"THECITY_SECRET=" + r.cred.citySecret,
		"THECITY_SIGNATURE_MODE=" + r.citySignatureMode(),
		"HOOKPIPE_ADDRESS=" + addr,
	}
	if l.sk != nil {
		env = append(env, l.sk.env...)
	}
	var bin string
	var args []string
	if def.bare {
		bin, args = r.bareBin, []string{"-addr", addr}
	} else {
		httpAddr, err := freeAddr()
		if err != nil {
			return l, l.fail("no free port: %v", err)
		}
		env = append(env, "HOOKPIPE_HTTP_ADDRESS="+httpAddr)
		l.metricsURL = "http://" + httpAddr + "/metrics"
		if r.opts.profileDir != "" {
			env = append(env, "HOOKPIPE_DEBUG_ENDPOINTS=true")
			l.profileURL = "http://" + httpAddr + "/debug/pprof/profile"
		}
		bin, args = r.hookpipeBin, []string{"run", filepath.Join(r.repo, "tests", "load", "configs", def.config)}
	}
	// The repository root is the working directory: configs import
	// blobl/envelope.blobl relative to it.
	if l.srv, err = startServer(bin, args, env, r.repo, filepath.Join(l.tb.TempDir(), "server.log"), r.pinned); err != nil {
		return l, l.fail("%v", err)
	}
	if err := l.srv.waitListening(addr, 60*time.Second); err != nil {
		return l, l.fail("%v", err)
	}
	l.gen = newGenerator(r.mix, &r.seq, "http://"+addr, def.paths)
	if err := waitAccepting(ctx, l.gen, l.srv, 60*time.Second); err != nil {
		return l, l.fail("%v", err)
	}
	return l, nil
}

// warm drives the scenario's load, unmeasured, for the warm-up time.
func (r *runner) warm(ctx context.Context, l *liveScenario, spec loadSpec) error {
	if r.opts.warmup > 0 {
		warm := spec
		warm.duration, warm.requests = r.opts.warmup, 0
		l.gen.run(ctx, warm)
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

// measure drives one measured phase and adds what it saw to the scenario's
// totals: requests and latencies, and the CPU time of the server, the sink,
// the load generator and the whole machine during the phase.
func (r *runner) measure(ctx context.Context, l *liveScenario, spec loadSpec, profile bool) (phaseFigures, error) {
	// The input's counters are read outside the CPU readings, so the
	// scrapes are not counted as load.
	var batchesBefore batchCounts
	if l.metricsURL != "" {
		var err error
		if batchesBefore, err = readBatchCounts(ctx, l.metricsURL); err != nil {
			return phaseFigures{}, fmt.Errorf("reading the server's metrics: %v", err)
		}
	}
	var sinkBefore time.Duration
	if l.sk != nil {
		sinkBefore = processesCPU(l.sk.processes)
	}
	cpuBefore, err := cpuTime(l.srv.pid())
	if err != nil {
		return phaseFigures{}, fmt.Errorf("reading server CPU time: %v", err)
	}
	loadBefore, err := cpuTime(os.Getpid())
	if err != nil {
		return phaseFigures{}, fmt.Errorf("reading the load generator's CPU time: %v", err)
	}
	busyBefore, totalBefore, err := machineCPU()
	if err != nil {
		return phaseFigures{}, fmt.Errorf("reading the machine's CPU time: %v", err)
	}
	var profileDone <-chan error
	if profile && l.profileURL != "" && spec.requests == 0 {
		profileDone = captureProfile(ctx, l.profileURL, spec.duration, filepath.Join(r.opts.profileDir, l.def.key+".pprof"))
	}
	phase := l.gen.run(ctx, spec)
	if profileDone != nil {
		if err := <-profileDone; err != nil {
			return phaseFigures{}, fmt.Errorf("CPU profile: %v", err)
		}
	}
	busyAfter, totalAfter, errMachine := machineCPU()
	loadAfter, errLoad := cpuTime(os.Getpid())
	if err := errors.Join(errMachine, errLoad); err != nil {
		return phaseFigures{}, fmt.Errorf("reading CPU times after the run: %v", err)
	}
	cpuAfter, err := cpuTime(l.srv.pid())
	if l.sk != nil {
		l.sinkCPU += processesCPU(l.sk.processes) - sinkBefore
	}
	if err != nil {
		return phaseFigures{}, fmt.Errorf("server gone after the run: %v\n%s", err, l.srv.logTail())
	}
	if ctx.Err() != nil {
		return phaseFigures{}, errors.New("interrupted")
	}
	if l.metricsURL != "" {
		after, err := readBatchCounts(ctx, l.metricsURL)
		if err != nil {
			return phaseFigures{}, fmt.Errorf("reading the server's metrics after the run: %v", err)
		}
		l.batches.addDelta(after, batchesBefore)
	}
	l.serverCPU += cpuAfter - cpuBefore
	l.loadCPU += loadAfter - loadBefore
	l.machineBusy += busyAfter - busyBefore
	l.machineAll += totalAfter - totalBefore
	l.phase = l.phase.add(phase)
	f := phaseFigures{rps: phase.rps()}
	if cpu := (cpuAfter - cpuBefore).Seconds(); cpu > 0 {
		f.perCPU = float64(phase.sent) / cpu
	}
	return f, nil
}

// finish turns the scenario's totals into its result, checks the sink holds
// every request answered 200, and tears the scenario down.
func (r *runner) finish(ctx context.Context, l *liveScenario) *result {
	defer l.close()
	res, phase := l.res, l.phase
	if phase == nil {
		return l.fail("nothing was measured")
	}
	if l.batches.batches > 0 {
		res.BatchSize = l.batches.messages / l.batches.batches
	}
	if l.batches.held > 0 {
		res.BatchHeldMs = 1000 * l.batches.heldSeconds / l.batches.held
	}
	if l.batches.writes > 0 {
		res.BatchWriteMs = 1000 * l.batches.writeSeconds / l.batches.writes
	}
	rss, err := peakRSS(l.srv.pid())
	if err != nil {
		return l.fail("reading server memory: %v", err)
	}
	if l.machineAll > 0 {
		res.MachineBusy = float64(l.machineBusy) / float64(l.machineAll)
	}
	res.LoadCPUSeconds = l.loadCPU.Seconds()
	res.SinkCPUSeconds = l.sinkCPU.Seconds()
	res.Requests, res.OK = phase.sent, phase.ok
	res.Errors, res.errorText = phase.errorMap(), phase.errorSummary()
	res.RPS = phase.rps()
	res.P50Ms, res.P99Ms, res.P999Ms = ms(phase.percentile(0.50)), ms(phase.percentile(0.99)), ms(phase.percentile(0.999))
	if n := len(phase.latencies); n > 0 {
		res.MaxMs = ms(phase.latencies[n-1])
	}
	res.PeakRSSMiB = float64(rss) / (1 << 20)
	res.ServerCPUSeconds = l.serverCPU.Seconds()
	if res.ServerCPUSeconds > 0 {
		res.PerCPUSecond = float64(res.Requests) / res.ServerCPUSeconds
	}
	res.Status = statusOK
	if ctx.Err() != nil {
		return l.fail("interrupted")
	}
	if !l.srv.running() {
		return l.fail("server exited during the run (%v)\n%s", l.srv.waitErr, l.srv.logTail())
	}

	if l.sk != nil {
		// Every reply is in, so every 200 was already written: count now.
		vctx, cancel := context.WithTimeout(ctx, storedTimeout)
		defer cancel()
		stored, detail, err := l.sk.stored(vctx)
		if err != nil {
			return l.fail("counting what %s stored: %v", l.def.key, err)
		}
		v := &verification{Sent: l.gen.sent.Load(), Accepted: l.gen.ok.Load(), Stored: stored, Detail: detail}
		v.Equal = v.Stored == v.Accepted
		res.Stored = v
		if v.Stored < v.Accepted {
			return l.fail("%d requests were answered 200 but only %d are stored (%s)", v.Accepted, v.Stored, detail)
		}
	}
	return res
}

// runSliced runs the scenarios side by side: all are started, then the load
// moves from one to the next every slice (the warm-up too, in the same
// turns) until each has been measured for the spec's duration. Every
// scenario sees the same stretch of the machine's weather, so their ratios
// can be taken within each cycle of turns rather than across minutes. With
// halfPeak, each of (c)'s turns is followed by one of open-loop load on its
// server at half of what (c) just reached: the latency at half of the peak,
// taken in the same stretch as the peak. It returns each scenario's result
// over all its slices (c-half last) and the ratios of every cycle.
func (r *runner) runSliced(ctx context.Context, defs []scenarioDef, spec loadSpec, slice time.Duration, halfPeak bool, out io.Writer) ([]*result, []round) {
	var started, active []*liveScenario
	defer func() {
		for _, l := range started {
			l.close()
		}
	}()
	load := fmt.Sprintf("%s, in turns of %s", spec, slice)
	results := make([]*result, len(defs))
	for i, def := range defs {
		l, failed := r.start(ctx, def)
		if failed != nil {
			failed.Load = load
			results[i] = failed
			continue
		}
		l.res.Load = load
		started = append(started, l)
		active = append(active, l)
	}
	// half shares (c)'s server and connections; (c) owns them, so closing
	// half closes nothing.
	var half, peak *liveScenario
	if i := slices.IndexFunc(started, func(l *liveScenario) bool { return l.def.key == "c" }); halfPeak && i >= 0 {
		peak = started[i]
		half = &liveScenario{def: peak.def, tb: &serviceTB{name: "c-half"}, srv: peak.srv, gen: peak.gen, metricsURL: peak.metricsURL, closed: true}
		half.res = &result{Key: "c-half", Title: peak.def.title + " at half of its peak", Errors: map[string]int64{},
			Load: fmt.Sprintf("open loop at half of (c)'s rate in the turn before, up to %d in flight, in turns of %s", spec.concurrency, slice)}
	}
	var offered, offeredTurns float64
	// turns gives each active scenario a turn of d, the first one a step
	// further along the list each time, so no scenario always follows the
	// same one (and what it leaves behind, a database's background writes,
	// say). One that fails leaves the rotation with its failure.
	rotation := 0
	turns := func(d time.Duration, each func(*liveScenario, loadSpec) error) {
		turn := spec
		turn.duration = d
		order := slices.Clone(active)
		if len(order) > 0 {
			k := rotation % len(order)
			order = append(order[k:], order[:k]...)
		}
		rotation++
		for _, l := range order {
			if err := each(l, turn); err != nil {
				l.fail("%v", err)
				l.close()
				active = slices.DeleteFunc(active, func(x *liveScenario) bool { return x == l })
			}
		}
	}
	if r.opts.warmup > 0 {
		n := max(1, int((r.opts.warmup+slice-1)/slice))
		for range n {
			turns(r.opts.warmup/time.Duration(n), func(l *liveScenario, s loadSpec) error {
				l.gen.run(ctx, s)
				return ctx.Err()
			})
		}
	}
	var cycles []round
	for done := time.Duration(0); done < spec.duration && len(active) > 0 && ctx.Err() == nil; done += slice {
		var figures []*result
		turns(min(slice, spec.duration-done), func(l *liveScenario, s loadSpec) error {
			f, err := r.measure(ctx, l, s, false)
			if err == nil {
				figures = append(figures, &result{Key: l.def.key, Status: statusOK, RPS: f.rps, PerCPUSecond: f.perCPU})
			}
			if err == nil && l == peak && f.rps > 0 && half.res.Status == "" {
				s.rate = f.rps / 2
				if _, err := r.measure(ctx, half, s, false); err != nil {
					half.fail("%v", err)
				}
				offered += s.rate
				offeredTurns++
			}
			return err
		})
		var c round
		c.Ratios, c.CPURatios = ratios(figures)
		cycles = append(cycles, c)
	}
	// Before (c) is finished: half reads (c)'s server.
	var halfRes *result
	if half != nil {
		halfRes = half.res
		if halfRes.Status == "" {
			halfRes = r.finish(ctx, half)
		}
		if offeredTurns > 0 {
			halfRes.Title = fmt.Sprintf("%s at half of peak (%.0f req/s offered)", peak.def.title, offered/offeredTurns)
		}
	}
	for i := range results {
		if results[i] == nil {
			l := started[slices.IndexFunc(started, func(l *liveScenario) bool { return l.def.key == defs[i].key })]
			if slices.Contains(active, l) {
				results[i] = r.finish(ctx, l)
			} else {
				results[i] = l.res
			}
		}
		printProgress(out, results[i])
	}
	if halfRes != nil {
		results = append(results, halfRes)
		printProgress(out, halfRes)
	}
	return results, withoutFailed(cycles, results)
}

// withoutFailed drops from the cycles every ratio with a scenario that did
// not end well (it failed mid-run, or its sink missed a 200): its earlier
// turns must not stand for it.
func withoutFailed(cycles []round, results []*result) []round {
	ok := map[string]bool{}
	for _, r := range results {
		ok[r.Key] = r.Status == statusOK
	}
	for _, c := range cycles {
		for _, m := range []map[string]float64{c.Ratios, c.CPURatios} {
			for pair := range m {
				num, den, _ := strings.Cut(pair, "/")
				if !ok[num] || !ok[den] {
					delete(m, pair)
				}
			}
		}
	}
	return cycles
}

func (r *runner) citySignatureMode() string {
	if r.opts.cityHMAC {
		return "hmac_sha256"
	}
	return "shared"
}
