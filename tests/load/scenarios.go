package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	BatchSize float64       `json:"mean_batch_size,omitempty"`
	Stored    *verification `json:"stored,omitempty"`

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

// runScenario starts the scenario's service and server, waits until the
// server accepts both providers, warms up, measures, verifies the sink and
// tears everything down.
func (r *runner) runScenario(ctx context.Context, def scenarioDef, spec loadSpec) (res *result) {
	res = &result{Key: def.key, Title: def.title, Load: spec.String(), Errors: map[string]int64{}}
	tb := &serviceTB{name: def.key, verbose: r.opts.verbose}
	defer tb.cleanup()
	defer func() {
		if p := recover(); p != nil {
			su, ok := p.(serviceUnavailable)
			if !ok {
				panic(p)
			}
			res.Status, res.Reason = statusSkipped, su.reason
		}
	}()
	fail := func(format string, args ...any) *result {
		res.Status, res.Reason = statusFailed, fmt.Sprintf(format, args...)
		return res
	}

	var sk *sink
	if def.sink != nil {
		sk = def.sink(tb)
	}
	addr, err := freeAddr()
	if err != nil {
		return fail("no free port: %v", err)
	}
	env := []string{
		"CONTROLSHIFT_USERNAME=" + r.cred.csUser,
		"CONTROLSHIFT_PASSWORD=" + r.cred.csPassword,
		"THECITY_SECRET=" + r.cred.citySecret,
		"THECITY_SIGNATURE_MODE=" + r.citySignatureMode(),
		"HOOKPIPE_ADDRESS=" + addr,
	}
	if sk != nil {
		env = append(env, sk.env...)
	}
	var bin, profileURL, metricsURL string
	var args []string
	if def.bare {
		bin, args = r.bareBin, []string{"-addr", addr}
	} else {
		httpAddr, err := freeAddr()
		if err != nil {
			return fail("no free port: %v", err)
		}
		env = append(env, "HOOKPIPE_HTTP_ADDRESS="+httpAddr)
		metricsURL = "http://" + httpAddr + "/metrics"
		if r.opts.profileDir != "" {
			env = append(env, "HOOKPIPE_DEBUG_ENDPOINTS=true")
			profileURL = "http://" + httpAddr + "/debug/pprof/profile"
		}
		bin, args = r.hookpipeBin, []string{"run", filepath.Join(r.repo, "tests", "load", "configs", def.config)}
	}
	// The repository root is the working directory: configs import
	// blobl/envelope.blobl relative to it.
	srv, err := startServer(bin, args, env, r.repo, filepath.Join(tb.TempDir(), "server.log"), r.pinned)
	if err != nil {
		return fail("%v", err)
	}
	defer srv.stop()
	if err := srv.waitListening(addr, 60*time.Second); err != nil {
		return fail("%v", err)
	}

	gen := newGenerator(r.mix, &r.seq, "http://"+addr, def.paths)
	defer gen.close()
	if err := waitAccepting(ctx, gen, srv, 60*time.Second); err != nil {
		return fail("%v", err)
	}
	if r.opts.warmup > 0 {
		warm := spec
		warm.duration, warm.requests = r.opts.warmup, 0
		gen.run(ctx, warm)
	}
	if ctx.Err() != nil {
		return fail("interrupted")
	}

	// Read before the CPU times, so the scrape is not counted as load.
	var batchesBefore batchCounts
	if metricsURL != "" {
		if batchesBefore, err = readBatchCounts(ctx, metricsURL); err != nil {
			return fail("reading the server's metrics: %v", err)
		}
	}
	var sinkBefore time.Duration
	if sk != nil {
		sinkBefore = processesCPU(sk.processes)
	}
	cpuBefore, err := cpuTime(srv.pid())
	if err != nil {
		return fail("reading server CPU time: %v", err)
	}
	loadBefore, err := cpuTime(os.Getpid())
	if err != nil {
		return fail("reading the load generator's CPU time: %v", err)
	}
	busyBefore, totalBefore, err := machineCPU()
	if err != nil {
		return fail("reading the machine's CPU time: %v", err)
	}
	var profileDone <-chan error
	if profileURL != "" && spec.requests == 0 {
		profileDone = captureProfile(ctx, profileURL, spec.duration, filepath.Join(r.opts.profileDir, def.key+".pprof"))
	}
	phase := gen.run(ctx, spec)
	if profileDone != nil {
		if err := <-profileDone; err != nil {
			return fail("CPU profile: %v", err)
		}
	}
	busyAfter, totalAfter, errMachine := machineCPU()
	loadAfter, errLoad := cpuTime(os.Getpid())
	if err := errors.Join(errMachine, errLoad); err != nil {
		return fail("reading CPU times after the run: %v", err)
	}
	if totalAfter > totalBefore {
		res.MachineBusy = float64(busyAfter-busyBefore) / float64(totalAfter-totalBefore)
	}
	res.LoadCPUSeconds = (loadAfter - loadBefore).Seconds()
	cpuAfter, err := cpuTime(srv.pid())
	if sk != nil {
		res.SinkCPUSeconds = (processesCPU(sk.processes) - sinkBefore).Seconds()
	}
	if err != nil {
		return fail("server gone after the run: %v\n%s", err, srv.logTail())
	}
	if metricsURL != "" {
		after, err := readBatchCounts(ctx, metricsURL)
		if err != nil {
			return fail("reading the server's metrics after the run: %v", err)
		}
		if n := after.batches - batchesBefore.batches; n > 0 {
			res.BatchSize = (after.messages - batchesBefore.messages) / n
		}
	}
	rss, err := peakRSS(srv.pid())
	if err != nil {
		return fail("reading server memory: %v", err)
	}

	res.Requests, res.OK = phase.sent, phase.ok
	res.Errors, res.errorText = phase.errorMap(), phase.errorSummary()
	res.RPS = phase.rps()
	res.P50Ms, res.P99Ms, res.P999Ms = ms(phase.percentile(0.50)), ms(phase.percentile(0.99)), ms(phase.percentile(0.999))
	if n := len(phase.latencies); n > 0 {
		res.MaxMs = ms(phase.latencies[n-1])
	}
	res.PeakRSSMiB = float64(rss) / (1 << 20)
	res.ServerCPUSeconds = (cpuAfter - cpuBefore).Seconds()
	if res.ServerCPUSeconds > 0 {
		res.PerCPUSecond = float64(res.Requests) / res.ServerCPUSeconds
	}
	res.Status = statusOK
	if ctx.Err() != nil {
		return fail("interrupted")
	}
	if !srv.running() {
		return fail("server exited during the run (%v)\n%s", srv.waitErr, srv.logTail())
	}

	if sk != nil {
		// Every reply is in, so every 200 was already written: count now.
		vctx, cancel := context.WithTimeout(ctx, storedTimeout)
		defer cancel()
		stored, detail, err := sk.stored(vctx)
		if err != nil {
			return fail("counting what %s stored: %v", def.key, err)
		}
		v := &verification{Sent: gen.sent.Load(), Accepted: gen.ok.Load(), Stored: stored, Detail: detail}
		v.Equal = v.Stored == v.Accepted
		res.Stored = v
		if v.Stored < v.Accepted {
			return fail("%d requests were answered 200 but only %d are stored (%s)", v.Accepted, v.Stored, detail)
		}
	}
	return res
}

func (r *runner) citySignatureMode() string {
	if r.opts.cityHMAC {
		return "hmac_sha256"
	}
	return "shared"
}
