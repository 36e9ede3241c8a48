// Command load measures hookpipe's HTTP ingest under load, each figure next
// to baselines measured in the same run, since only ratios mean anything on
// a shared, noisy machine:
//
//	a  a bare net/http handler that reads the body and answers 200 (the ceiling)
//	b  the stock engine: core http_server input, mapping root = this, drop
//	c  hookpipe's quickstart pipeline (authentication, parsing, CloudEvents) to drop
//	d  the same to Postgres (200 only after the commit, batched inserts)
//	e  the same to Kafka (200 only after the broker's ack, batched produce)
//
// It builds hookpipe and the bare server, starts each server as its own
// process on 127.0.0.1, and drives it with a keep-alive HTTP client sending
// the providers' documented example payloads (ControlShift with basic auth,
// The City with its signature header), each with a delivery id of its own.
// It prints requests/s, p50/p99/p999 latency, errors by status, the server's
// peak RSS and CPU time, the ratios c/a, c/b, d/c and e/c, and for d and e
// whether every request answered 200 is stored.
//
// The scenarios run side by side: all servers are started, and the load
// moves from one to the next every -slice (1 s), so that each ratio pairs
// figures measured seconds apart; the ratios reported are the medians over
// these cycles of turns, with their spread. On a shared machine whose speed
// drifts by half within a minute, that is what makes them mean something.
//
//	go run ./tests/load                          # all scenarios, 10 s each
//	go run ./tests/load -scenarios a,b,c -duration 5s
//	go run ./tests/load -scenarios c -half-peak  # p99 at half of c's peak
//	go run ./tests/load -smoke                   # 1 s each, for CI
//	go run ./tests/load -scenarios b,c -rounds 5 # medians of 5 interleaved rounds
//	go run ./tests/load -slice 0                 # each scenario alone, one after the other
//	go run ./tests/load -scenarios c -cpuprofile /tmp/prof  # where c's CPU goes
//
// A scenario whose service (Postgres, Kafka) cannot be had is reported as
// skipped; -require-all turns that into a non-zero exit. A scenario that
// fails (server does not run, a 200 that is not stored) always exits
// non-zero.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hookpipe/hookpipe/tests/harness"
)

type options struct {
	scenarios   []string
	duration    time.Duration
	requests    int64
	concurrency int
	warmup      time.Duration
	rate        float64
	halfPeak    bool
	smoke       bool
	jsonPath    string
	requireAll  bool
	pin         bool
	cityHMAC    bool
	verbose     bool
	profileDir  string
	rounds      int
	slice       time.Duration
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarios := fs.String("scenarios", "a,b,c,d,e", "comma-separated scenarios to run: a (bare net/http), b (stock engine), c (hookpipe → drop), d (→ Postgres), e (→ Kafka)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario")
	fs.Int64Var(&o.requests, "requests", 0, "measure a fixed number of requests per scenario instead of a duration")
	fs.IntVar(&o.concurrency, "concurrency", 50, "concurrent connections (closed loop), or the most requests in flight (open loop)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: send this many requests/s whatever the replies, latency counted from when each was due (0: closed loop)")
	fs.BoolVar(&o.halfPeak, "half-peak", false, "also measure c in open loop at half of its peak and report its p99: in turns, after each of c's turns at half of what it just measured; otherwise after the scenarios, at half of c's result")
	fs.BoolVar(&o.smoke, "smoke", false, "a short run for CI: 1 s per scenario, concurrency 8, 200 ms warm-up (explicit flags win)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results to this JSON file")
	fs.BoolVar(&o.requireAll, "require-all", false, "exit non-zero when a scenario is skipped because its service is unavailable")
	fs.BoolVar(&o.pin, "pin", true, "on machines with 2+ CPUs and taskset, run the server on CPU 0 and the load generator on CPU 1")
	fs.BoolVar(&o.cityHMAC, "city-hmac", false, "sign The City's requests with HMAC-SHA256 of the body (city_signature mode hmac_sha256) instead of sending the shared secret")
	fs.BoolVar(&o.verbose, "v", false, "log service start-up details")
	fs.IntVar(&o.rounds, "rounds", 1, "run the scenario list this many times, interleaved (b c b c ...), and report each scenario's median round; the ratios of every round are printed too")
	fs.DurationVar(&o.slice, "slice", time.Second, "run the scenarios side by side, the load moving from one to the next every slice, and take each ratio within a cycle of turns (0: one scenario after the other, each alone; so are -requests, -rate and -cpuprofile runs)")
	fs.StringVar(&o.profileDir, "cpuprofile", "", "write a CPU profile of each hookpipe or stock-engine server's measured phase to this directory (<scenario>.pprof, read with go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			o.duration = time.Second
		}
		if !set["concurrency"] {
			o.concurrency = 8
		}
		if !set["warmup"] {
			o.warmup = 200 * time.Millisecond
		}
		if !set["slice"] {
			o.slice = 250 * time.Millisecond
		}
	}
	seen := map[string]bool{}
	for _, k := range strings.Split(*scenarios, ",") {
		k = strings.TrimSpace(k)
		if k == "" || seen[k] {
			continue
		}
		if _, ok := scenarioByKey(k); !ok {
			return o, fmt.Errorf("unknown scenario %q (want a, b, c, d or e)", k)
		}
		seen[k] = true
		o.scenarios = append(o.scenarios, k)
	}
	switch {
	case len(o.scenarios) == 0 && !o.halfPeak:
		return o, errors.New("no scenario to run")
	case o.concurrency < 1:
		return o, errors.New("-concurrency must be at least 1")
	case o.rounds < 1:
		return o, errors.New("-rounds must be at least 1")
	case o.requests < 0, o.rate < 0:
		return o, errors.New("-requests and -rate must not be negative")
	case o.requests == 0 && o.duration <= 0:
		return o, errors.New("-duration must be positive")
	case o.slice < 0:
		return o, errors.New("-slice must not be negative")
	}
	return o, nil
}

func main() {
	opts, err := parseOptions(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, opts, os.Stdout, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	os.Exit(rep.exitCode(opts))
}

// report is the whole run, as written with -json.
type report struct {
	CPUs      int       `json:"cpus"`
	GoVersion string    `json:"go_version"`
	Pinning   string    `json:"pinning"`
	Bodies    string    `json:"bodies"`
	Load      string    `json:"load"`
	Results   []*result `json:"results"`
	// Ratios compare throughput (requests/s) of two scenarios.
	Ratios map[string]float64 `json:"ratios"`
	// CPURatios compare requests per server CPU-second: what each request
	// costs the server, less sensitive to a load generator that cannot keep
	// the server busy.
	CPURatios map[string]float64 `json:"cpu_ratios"`
	// Rounds holds every round's results and throughput ratios when the
	// scenarios ran more than once (-rounds); Results then holds each
	// scenario's median round.
	Rounds []round `json:"rounds,omitempty"`
	// Cycles holds the ratios of every cycle of turns when the scenarios
	// ran side by side (-slice); Ratios and CPURatios are then their medians.
	Cycles []round `json:"cycles,omitempty"`
	// CycleSpread is, for each ratio, its 25th and 75th percentile over the
	// cycles: how much the machine moved it.
	CycleSpread map[string][2]float64 `json:"cycle_spread,omitempty"`
}

type round struct {
	Results   []*result          `json:"results,omitempty"`
	Ratios    map[string]float64 `json:"ratios"`
	CPURatios map[string]float64 `json:"cpu_ratios"`
}

// ratioPairs are the comparisons the report prints: hookpipe against the
// ceiling and the stock engine, and each real sink against drop.
var ratioPairs = [][2]string{{"c", "a"}, {"c", "b"}, {"d", "c"}, {"e", "c"}}

func (rep *report) byKey(key string) *result {
	for _, r := range rep.Results {
		if r.Key == key && r.Status == statusOK {
			return r
		}
	}
	return nil
}

func (rep *report) exitCode(o options) int {
	code := 0
	all := rep.Results
	for _, rd := range rep.Rounds {
		all = append(all, rd.Results...)
	}
	for _, r := range all {
		if r.Status == statusFailed || (r.Status == statusSkipped && o.requireAll) {
			code = 1
		}
	}
	return code
}

// ratios compares the scenarios of one set of results: throughput and
// requests per server CPU-second.
func ratios(results []*result) (throughput, perCPU map[string]float64) {
	throughput, perCPU = map[string]float64{}, map[string]float64{}
	set := &report{Results: results}
	for _, q := range ratioPairs {
		num, den := set.byKey(q[0]), set.byKey(q[1])
		if num != nil && den != nil && den.RPS > 0 {
			throughput[q[0]+"/"+q[1]] = num.RPS / den.RPS
		}
		if num != nil && den != nil && den.PerCPUSecond > 0 {
			perCPU[q[0]+"/"+q[1]] = num.PerCPUSecond / den.PerCPUSecond
		}
	}
	return throughput, perCPU
}

// medianRatios is, for each ratio, the median over the rounds that have it
// (the lower middle one for an even count).
func medianRatios(rounds []round, of func(round) map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, vs := range ratioValues(rounds, of) {
		out[k] = nearestRank(vs, 0.5)
	}
	return out
}

// ratioSpread is, for each ratio, its 25th and 75th percentile over the
// rounds that have it.
func ratioSpread(rounds []round, of func(round) map[string]float64) map[string][2]float64 {
	out := map[string][2]float64{}
	for k, vs := range ratioValues(rounds, of) {
		out[k] = [2]float64{nearestRank(vs, 0.25), nearestRank(vs, 0.75)}
	}
	return out
}

// ratioValues gathers each ratio's values over the rounds, sorted.
func ratioValues(rounds []round, of func(round) map[string]float64) map[string][]float64 {
	all := map[string][]float64{}
	for _, rd := range rounds {
		for k, v := range of(rd) {
			all[k] = append(all[k], v)
		}
	}
	for _, vs := range all {
		slices.Sort(vs)
	}
	return all
}

// nearestRank is the smallest of the sorted values that at least q of them
// do not exceed: for q 0.5 and an even count, the lower middle one.
func nearestRank(sorted []float64, q float64) float64 {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// medianRounds picks, for each scenario, its round with the median
// throughput (the lower middle one for an even count). A scenario that
// failed in any round is reported by that failure.
func medianRounds(rounds []round, keys []string) []*result {
	var out []*result
	for _, key := range keys {
		var ok []*result
		var failed *result
		for _, rd := range rounds {
			for _, r := range rd.Results {
				switch {
				case r.Key != key:
				case r.Status == statusOK:
					ok = append(ok, r)
				case failed == nil:
					failed = r
				}
			}
		}
		switch {
		case failed != nil:
			out = append(out, failed)
		case len(ok) > 0:
			slices.SortFunc(ok, func(a, b *result) int { return cmp.Compare(a.RPS, b.RPS) })
			out = append(out, ok[(len(ok)-1)/2])
		}
	}
	return out
}

// run builds the servers and runs the chosen scenarios in order, printing
// progress and the final table to out. allowPin lets a test keep its own
// process unpinned.
func run(ctx context.Context, opts options, out io.Writer, allowPin bool) (*report, error) {
	r := &runner{opts: opts, repo: harness.RepoRoot(), cred: newCredentials()}
	if _, err := os.Stat(filepath.Join(r.repo, "go.mod")); err != nil {
		return nil, fmt.Errorf("repository root not found at %s: %w", r.repo, err)
	}
	var err error
	if r.mix, err = newBodyMix(r.cred, opts.cityHMAC); err != nil {
		return nil, err
	}
	binDir, err := os.MkdirTemp("", "hookpipe-load-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(binDir)
	fmt.Fprintln(out, "building hookpipe and the bare server ...")
	if r.hookpipeBin, r.bareBin, err = buildBinaries(r.repo, binDir); err != nil {
		return nil, err
	}

	rep := &report{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Ratios: map[string]float64{}, CPURatios: map[string]float64{}}
	rep.Pinning = "off (-pin=false)"
	if opts.pin && allowPin {
		rep.Pinning = r.pin()
	} else if opts.pin {
		rep.Pinning = "off (in tests)"
	}
	rep.Bodies = fmt.Sprintf("mean %.0f B; %s", r.mix.meanSize, strings.Join(r.mix.groups, ", "))
	spec := loadSpec{concurrency: opts.concurrency, duration: opts.duration, requests: opts.requests, rate: opts.rate}
	rep.Load = fmt.Sprintf("%s per scenario after %s warm-up", spec, opts.warmup)
	sliced := opts.slice > 0 && len(opts.scenarios) > 1 && opts.requests == 0 && opts.rate == 0 && opts.profileDir == ""
	if sliced {
		rep.Load += fmt.Sprintf("; the scenarios side by side, the load moving to the next every %s", opts.slice)
	}
	fmt.Fprintf(out, "machine: %d CPUs, %s; pinning: %s\n", rep.CPUs, rep.GoVersion, rep.Pinning)
	fmt.Fprintf(out, "bodies: %s; The City signature: %s\n", rep.Bodies, r.citySignatureMode())
	fmt.Fprintf(out, "load: %s\n\n", rep.Load)

	opts.rounds = max(opts.rounds, 1)
	for n := 1; n <= opts.rounds && ctx.Err() == nil; n++ {
		if opts.rounds > 1 {
			fmt.Fprintf(out, "round %d of %d\n", n, opts.rounds)
		}
		var rd round
		if sliced {
			var defs []scenarioDef
			for _, key := range opts.scenarios {
				def, _ := scenarioByKey(key)
				defs = append(defs, def)
			}
			var cycles []round
			rd.Results, cycles = r.runSliced(ctx, defs, spec, opts.slice, opts.halfPeak, out)
			rep.Cycles = append(rep.Cycles, cycles...)
		} else {
			for _, key := range opts.scenarios {
				def, _ := scenarioByKey(key)
				res := r.runScenario(ctx, def, spec)
				rd.Results = append(rd.Results, res)
				printProgress(out, res)
				if ctx.Err() != nil {
					break
				}
			}
		}
		rd.Ratios, rd.CPURatios = ratios(rd.Results)
		rep.Rounds = append(rep.Rounds, rd)
	}
	if len(rep.Rounds) == 1 {
		rep.Results, rep.Rounds = rep.Rounds[0].Results, nil
	} else {
		rep.Results = medianRounds(rep.Rounds, append(slices.Clone(opts.scenarios), "c-half"))
	}
	halfDone := slices.ContainsFunc(rep.Results, func(r *result) bool { return r.Key == "c-half" })
	if opts.halfPeak && !halfDone && ctx.Err() == nil {
		// The peak is a closed-loop figure: a c measured under -rate is not one.
		var peak *result
		if opts.rate == 0 {
			peak = rep.byKey("c")
		}
		if peak == nil {
			def, _ := scenarioByKey("c")
			peak = r.runScenario(ctx, def, loadSpec{concurrency: opts.concurrency, duration: opts.duration, requests: opts.requests})
			peak.Key, peak.Title = "c-peak", def.title+" (peak for -half-peak)"
			rep.Results = append(rep.Results, peak)
			printProgress(out, peak)
		}
		if peak.Status == statusOK && peak.RPS > 0 {
			def, _ := scenarioByKey("c")
			half := loadSpec{concurrency: opts.concurrency, duration: opts.duration, requests: opts.requests, rate: peak.RPS / 2}
			res := r.runScenario(ctx, def, half)
			res.Key, res.Title = "c-half", fmt.Sprintf("%s at half of peak (%.0f req/s offered)", def.title, half.rate)
			rep.Results = append(rep.Results, res)
			printProgress(out, res)
		}
	}

	rep.Ratios, rep.CPURatios = ratios(rep.Results)
	switch {
	case len(rep.Cycles) > 0:
		// Each cycle pairs scenarios measured within seconds of each other:
		// the median of those is steadier still than the rounds'.
		rep.Ratios = medianRatios(rep.Cycles, func(rd round) map[string]float64 { return rd.Ratios })
		rep.CPURatios = medianRatios(rep.Cycles, func(rd round) map[string]float64 { return rd.CPURatios })
		rep.CycleSpread = ratioSpread(rep.Cycles, func(rd round) map[string]float64 { return rd.Ratios })
	case len(rep.Rounds) > 1:
		// Each round's ratio pairs scenarios run back to back: the median of
		// those is steadier than a ratio of two medians from different rounds.
		rep.Ratios = medianRatios(rep.Rounds, func(rd round) map[string]float64 { return rd.Ratios })
		rep.CPURatios = medianRatios(rep.Rounds, func(rd round) map[string]float64 { return rd.CPURatios })
	}
	printReport(out, rep)
	if opts.jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return rep, err
		}
		if err := os.WriteFile(opts.jsonPath, append(b, '\n'), 0o644); err != nil {
			return rep, err
		}
		fmt.Fprintf(out, "\nresults written to %s\n", opts.jsonPath)
	}
	return rep, ctx.Err()
}

// pin puts the generator on CPU 1, so that servers started under
// `taskset -c 0` have CPU 0 to themselves. Services the scenarios start
// (kfake) inherit CPU 1; a Postgres server that is already running keeps
// its own placement.
func (r *runner) pin() string {
	if runtime.NumCPU() < 2 {
		return "off (1 CPU)"
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return "off (no taskset)"
	}
	if err := pinSelf(1); err != nil {
		return fmt.Sprintf("off (%v)", err)
	}
	// One CPU: more Ps would only contend for it.
	runtime.GOMAXPROCS(1)
	r.pinned = true
	return "server on CPU 0 (taskset), load generator and the brokers it starts on CPU 1"
}

func printProgress(out io.Writer, r *result) {
	switch r.Status {
	case statusOK:
		fmt.Fprintf(out, "  [%s] %s: %.0f req/s, p99 %.2f ms, errors %s\n", r.Key, r.Title, r.RPS, r.P99Ms, r.errorText)
	default:
		fmt.Fprintf(out, "  [%s] %s: %s: %s\n", r.Key, r.Title, r.Status, r.Reason)
	}
}

func printReport(out io.Writer, rep *report) {
	fmt.Fprintln(out)
	rows := [][]string{{"", "scenario", "req/s", "p50 ms", "p99 ms", "p999 ms", "requests", "errors", "peak RSS MiB", "server CPU s", "req/CPU-s", "sink CPU s", "load CPU s", "machine busy", "batch", "batch held/write ms"}}
	for _, r := range rep.Results {
		if r.Status != statusOK {
			rows = append(rows, []string{r.Key, r.Title, r.Status})
			continue
		}
		rows = append(rows, []string{r.Key, r.Title,
			fmt.Sprintf("%.0f", r.RPS), fmt.Sprintf("%.2f", r.P50Ms), fmt.Sprintf("%.2f", r.P99Ms), fmt.Sprintf("%.2f", r.P999Ms),
			fmt.Sprint(r.Requests), r.errorText, fmt.Sprintf("%.1f", r.PeakRSSMiB), fmt.Sprintf("%.2f", r.ServerCPUSeconds),
			fmt.Sprintf("%.0f", r.PerCPUSecond), sinkCPU(r), fmt.Sprintf("%.2f", r.LoadCPUSeconds), fmt.Sprintf("%.0f%%", 100*r.MachineBusy), batchSize(r), batchTimes(r)})
	}
	printTable(out, rows, 2)
	fmt.Fprintln(out)
	if len(rep.Rounds) > 1 {
		fmt.Fprintf(out, "(each scenario's median of %d interleaved rounds)\n", len(rep.Rounds))
		for i, rd := range rep.Rounds {
			fmt.Fprintf(out, "round %d throughput ratios:              %s\n", i+1, formatRatios(rd.Ratios))
		}
	}
	switch {
	case len(rep.Cycles) > 0:
		fmt.Fprintf(out, "(the ratios below are medians over %d cycles of turns, each pairing scenarios measured seconds apart)\n", len(rep.Cycles))
	case len(rep.Rounds) > 1:
		fmt.Fprintln(out, "(the ratios below are the medians of the rounds' ratios)")
	}
	fmt.Fprintf(out, "throughput ratios (req/s, same run):     %s\n", formatRatios(rep.Ratios))
	if len(rep.CycleSpread) > 0 {
		fmt.Fprintf(out, "  25th-75th percentile over the cycles:  %s\n", formatSpread(rep.CycleSpread))
	}
	fmt.Fprintf(out, "efficiency ratios (req/CPU-s, same run): %s\n", formatRatios(rep.CPURatios))

	if half := rep.byKey("c-half"); half != nil {
		peak := rep.byKey("c")
		if peak == nil {
			peak = rep.byKey("c-peak")
		}
		if peak != nil {
			fmt.Fprintf(out, "c at half of peak: p99 %.2f ms at %.0f req/s (at peak, %.0f req/s: p99 %.2f ms)\n", half.P99Ms, half.RPS, peak.RPS, peak.P99Ms)
		}
	}
	for _, r := range rep.Results {
		if r.Stored != nil {
			v := r.Stored
			mark := "stored == answered 200"
			switch {
			case v.Stored < v.Accepted:
				mark = "LOST: fewer stored than answered 200"
			case v.Stored > v.Accepted:
				mark = fmt.Sprintf("all 200s stored, plus %d answered with an error but written", v.Stored-v.Accepted)
			}
			fmt.Fprintf(out, "%s stored: %d (%s); answered 200: %d of %d sent: %s\n", r.Key, v.Stored, v.Detail, v.Accepted, v.Sent, mark)
		}
	}
	for _, r := range rep.Results {
		if r.Status != statusOK {
			// The progress line above has the whole reason, server log included.
			first, _, _ := strings.Cut(r.Reason, "\n")
			fmt.Fprintf(out, "%s %s: %s\n", r.Key, r.Status, first)
		}
	}
}

func sinkCPU(r *result) string {
	if r.SinkCPUSeconds == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.SinkCPUSeconds)
}

func batchSize(r *result) string {
	if r.BatchSize == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.BatchSize)
}

// batchTimes is how long a batch was held (handed over until acknowledged)
// and how long an output took to write one, in ms.
func batchTimes(r *result) string {
	if r.BatchHeldMs == 0 && r.BatchWriteMs == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f/%.2f", r.BatchHeldMs, r.BatchWriteMs)
}

func formatRatios(m map[string]float64) string {
	var parts []string
	for _, q := range ratioPairs {
		k := q[0] + "/" + q[1]
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.3f", k, v))
		} else {
			parts = append(parts, k+" n/a")
		}
	}
	return strings.Join(parts, "   ")
}

func formatSpread(m map[string][2]float64) string {
	var parts []string
	for _, q := range ratioPairs {
		k := q[0] + "/" + q[1]
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f-%.2f", k, v[0], v[1]))
		}
	}
	return strings.Join(parts, "   ")
}

// printTable prints rows in aligned columns: the first textColumns columns
// left-aligned, the figures right-aligned.
func printTable(out io.Writer, rows [][]string, textColumns int) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < textColumns {
				b.WriteString(cell + pad)
			} else {
				b.WriteString(pad + cell)
			}
		}
		fmt.Fprintln(out, strings.TrimRight(b.String(), " "))
	}
}
