package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// smokeOptions is the CI smoke run (-smoke) of the given scenarios, side by
// side in turns.
func smokeOptions(scenarios ...string) options {
	return options{
		scenarios:   scenarios,
		duration:    time.Second,
		concurrency: 8,
		warmup:      200 * time.Millisecond,
		slice:       250 * time.Millisecond,
		pin:         true, // ignored in tests: the test process stays unpinned
	}
}

// checkClean asserts that a scenario ran and that every request it sent was
// answered 200. Timings are printed, never asserted.
func checkClean(t *testing.T, rep *report, key string) *result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Key != key {
			continue
		}
		if r.Status != statusOK {
			t.Fatalf("scenario %s %s: %s", key, r.Status, r.Reason)
		}
		if r.Requests == 0 || r.OK != r.Requests || len(r.Errors) != 0 {
			t.Fatalf("scenario %s: %d requests, %d answered 200, errors %v", key, r.Requests, r.OK, r.Errors)
		}
		if r.P50Ms <= 0 || r.P999Ms < r.P99Ms || r.P99Ms < r.P50Ms || r.PeakRSSMiB <= 0 || r.LoadCPUSeconds <= 0 || r.MachineBusy <= 0 || r.MachineBusy > 1 {
			t.Fatalf("scenario %s: figures not recorded: %+v", key, r)
		}
		return r
	}
	t.Fatalf("scenario %s did not run", key)
	return nil
}

// TestSmokeBareAndHookpipe builds both servers and runs the smoke version of
// the ceiling (a) and of hookpipe's quickstart pipeline (c): every request,
// signed and authenticated as in production, must be answered 200.
func TestSmokeBareAndHookpipe(t *testing.T) {
	var out strings.Builder
	// One after the other (-slice 0), each alone: the other way of running.
	opts := smokeOptions("a", "c")
	opts.slice = 0
	rep, err := run(context.Background(), opts, &out, false)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, rep, "a")
	if c := checkClean(t, rep, "c"); c.BatchSize < 1 {
		t.Errorf("scenario c: mean batch size %v not recorded", c.BatchSize)
	}
	if _, ok := rep.Ratios["c/a"]; !ok {
		t.Errorf("no c/a ratio: %v", rep.Ratios)
	}
	if len(rep.Cycles) != 0 {
		t.Errorf("%d cycles of turns in a run without slices", len(rep.Cycles))
	}
	if code := rep.exitCode(options{requireAll: true}); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func TestMedianRounds(t *testing.T) {
	res := func(key string, rps float64, status string) *result {
		return &result{Key: key, RPS: rps, Status: status}
	}
	rounds := []round{
		{Results: []*result{res("b", 100, statusOK), res("c", 90, statusOK)}},
		{Results: []*result{res("b", 300, statusOK), res("c", 95, statusOK)}},
		{Results: []*result{res("b", 200, statusOK), res("c", 10, statusOK)}},
		{Results: []*result{res("b", 400, statusOK), res("d", 0, statusFailed)}},
	}
	got := medianRounds(rounds, []string{"b", "c", "d"})
	if len(got) != 3 {
		t.Fatalf("%d results", len(got))
	}
	// b: 100 200 300 400 → the lower middle; c: 10 90 95 → 90; d failed once.
	if got[0].RPS != 200 || got[1].RPS != 90 || got[2].Status != statusFailed {
		t.Fatalf("medians %+v %+v %+v", got[0], got[1], got[2])
	}
	if code := (&report{Results: got[:2], Rounds: rounds}).exitCode(options{}); code != 1 {
		t.Errorf("a failure in one round must fail the run, exit code %d", code)
	}
	tp, _ := ratios(got)
	if r := tp["c/b"]; r != 90.0/200 {
		t.Errorf("c/b %v", r)
	}
}

func TestRoundsOption(t *testing.T) {
	o, err := parseOptions([]string{"-scenarios", "b,c", "-rounds", "3"}, &strings.Builder{})
	if err != nil || o.rounds != 3 {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := parseOptions([]string{"-rounds", "0"}, &strings.Builder{}); err == nil {
		t.Fatal("-rounds 0 accepted")
	}
}

func TestMedianRatios(t *testing.T) {
	rounds := []round{
		{Ratios: map[string]float64{"c/b": 0.9, "d/c": 0.3}},
		{Ratios: map[string]float64{"c/b": 1.1}},
		{Ratios: map[string]float64{"c/b": 0.5, "d/c": 0.4}},
	}
	got := medianRatios(rounds, func(rd round) map[string]float64 { return rd.Ratios })
	if got["c/b"] != 0.9 || got["d/c"] != 0.3 {
		t.Fatalf("%v", got)
	}
}

func TestRatioSpread(t *testing.T) {
	var cycles []round
	for _, v := range []float64{0.5, 0.9, 0.6, 0.8, 0.7, 0.1, 1.0, 0.4} {
		cycles = append(cycles, round{Ratios: map[string]float64{"d/c": v}})
	}
	// Sorted: 0.1 0.4 0.5 0.6 0.7 0.8 0.9 1.0; nearest ranks 2, 4 and 6.
	med := medianRatios(cycles, func(rd round) map[string]float64 { return rd.Ratios })
	spread := ratioSpread(cycles, func(rd round) map[string]float64 { return rd.Ratios })
	if med["d/c"] != 0.6 || spread["d/c"] != [2]float64{0.4, 0.8} {
		t.Fatalf("median %v, spread %v", med, spread)
	}
	if one := nearestRank([]float64{3}, 0.25); one != 3 {
		t.Errorf("one value: %v", one)
	}
}

// A scenario that failed after some good turns contributes no ratio.
func TestWithoutFailed(t *testing.T) {
	cycles := []round{
		{Ratios: map[string]float64{"c/b": 1, "d/c": 0.5, "e/c": 0.8}, CPURatios: map[string]float64{"d/c": 0.6, "e/c": 0.8}},
		{Ratios: map[string]float64{"c/b": 1.1, "e/c": 0.7}, CPURatios: map[string]float64{"e/c": 0.7}},
	}
	results := []*result{{Key: "b", Status: statusOK}, {Key: "c", Status: statusOK}, {Key: "d", Status: statusFailed}, {Key: "e", Status: statusOK}}
	got := withoutFailed(cycles, results)
	if _, ok := got[0].Ratios["d/c"]; ok {
		t.Error("d/c kept though d failed")
	}
	if _, ok := got[0].CPURatios["d/c"]; ok {
		t.Error("d/c per CPU-second kept though d failed")
	}
	if got[0].Ratios["e/c"] != 0.8 || got[1].Ratios["c/b"] != 1.1 {
		t.Errorf("good ratios lost: %v", got)
	}
}

func TestPhaseResultAdd(t *testing.T) {
	a := &phaseResult{elapsed: time.Second, sent: 3, ok: 2, latencies: []time.Duration{1, 4, 9},
		statuses: map[int]int64{503: 1}, transport: map[string]int64{}}
	b := &phaseResult{elapsed: 2 * time.Second, sent: 4, ok: 3, latencies: []time.Duration{2, 3, 4, 10},
		statuses: map[int]int64{503: 1}, transport: map[string]int64{"eof": 1}}
	var none *phaseResult
	sum := none.add(a).add(b)
	want := []time.Duration{1, 2, 3, 4, 4, 9, 10}
	if !slices.Equal(sum.latencies, want) {
		t.Errorf("latencies %v, want %v", sum.latencies, want)
	}
	if sum.sent != 7 || sum.ok != 5 || sum.elapsed != 3*time.Second || sum.statuses[503] != 2 || sum.transport["eof"] != 1 {
		t.Errorf("sum %+v", sum)
	}
	if sum.rps() != 7.0/3 {
		t.Errorf("rps %v", sum.rps())
	}
	if len(a.latencies) != 3 || a.sent != 3 {
		t.Errorf("add changed its receiver: %+v", a)
	}
}

func TestSliceOption(t *testing.T) {
	o, err := parseOptions(nil, &strings.Builder{})
	if err != nil || o.slice != time.Second {
		t.Fatalf("default slice %v (%v)", o.slice, err)
	}
	if o, _ := parseOptions([]string{"-smoke"}, &strings.Builder{}); o.slice != 250*time.Millisecond {
		t.Errorf("smoke slice %v", o.slice)
	}
	if _, err := parseOptions([]string{"-slice", "-1s"}, &strings.Builder{}); err == nil {
		t.Error("a negative slice was accepted")
	}
}

func TestParseMachineCPU(t *testing.T) {
	stat := "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 3 0\nintr 1 2 3\n"
	busy, total, err := parseMachineCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal = 160; guest (7) is inside user.
	if busy != 160 || total != 1000 {
		t.Errorf("busy %d total %d, want 160 and 1000", busy, total)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu  1 2 3\n", "cpu  1 2 x 4 5 6 7 8\n"} {
		if _, _, err := parseMachineCPU([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseBatchCounts(t *testing.T) {
	text := `# HELP webhook_batches_total hookpipe metric
# TYPE webhook_batches_total counter
webhook_batch_messages_total{label="",path="root.input"} 90
webhook_batch_size{label="",path="root.input"} 7
webhook_batches_total{label="",path="root.input"} 30
webhook_batches_total{label="second",path="root.input"} 2
webhook_batches_total{label="odd } \" x",path="root.input"} 1 1700000000000
webhook_requests_total 1e+06
`
	c, err := parseBatchCounts(text)
	if err != nil || c.batches != 33 || c.messages != 90 {
		t.Fatalf("%+v, %v", c, err)
	}
	timers := `# TYPE input_latency_ns histogram
input_latency_ns_bucket{label="",path="root.input",le="0.001"} 3
input_latency_ns_sum{label="",path="root.input"} 0.5
input_latency_ns_count{label="",path="root.input"} 4
# TYPE output_latency_ns histogram
output_latency_ns_sum{label="",path="root.output.switch.cases.0.output"} 0.25
output_latency_ns_count{label="",path="root.output.switch.cases.0.output"} 1
output_latency_ns_sum{label="",path="root.output.switch.cases.1.output"} 1.75
output_latency_ns_count{label="",path="root.output.switch.cases.1.output"} 3
# TYPE processor_latency_ns histogram
processor_latency_ns_sum{label="",path="root.pipeline.processors.0"} 9
`
	c, err = parseBatchCounts(timers)
	if err != nil || c.held != 4 || c.heldSeconds != 0.5 || c.writes != 4 || c.writeSeconds != 2 {
		t.Fatalf("timers: %+v, %v", c, err)
	}
	// A summary's sum is in nanoseconds.
	summary := "# TYPE output_latency_ns summary\noutput_latency_ns{quantile=\"0.5\"} 2e+06\noutput_latency_ns_sum 2.5e+06\noutput_latency_ns_count 1\n"
	if c, err := parseBatchCounts(summary); err != nil || c.writes != 1 || c.writeSeconds != 0.0025 {
		t.Fatalf("summary timers: %+v, %v", c, err)
	}
	// Samples without a TYPE line before them, or of a family that is not a
	// timer type, are not taken for timers.
	untyped := "output_latency_ns_sum 7\noutput_latency_ns_count 1\n# TYPE input_latency_ns gauge\ninput_latency_ns_sum 3\ninput_latency_ns_count 1\n"
	if c, err := parseBatchCounts(untyped); err != nil || c != (batchCounts{}) {
		t.Fatalf("untyped timers: %+v, %v", c, err)
	}
	if c, err := parseBatchCounts("process_cpu_seconds_total 3\n"); err != nil || c != (batchCounts{}) {
		t.Fatalf("no counters: %+v, %v", c, err)
	}
	if _, err := parseBatchCounts("webhook_batches_total{} x\n"); err == nil {
		t.Fatal("a value that is not a number was taken")
	}
}

func TestBatchCountsAddDelta(t *testing.T) {
	total := batchCounts{batches: 1, messages: 2, held: 3, heldSeconds: 4, writes: 5, writeSeconds: 6}
	before := batchCounts{batches: 10, messages: 20, held: 30, heldSeconds: 40, writes: 50, writeSeconds: 60}
	after := batchCounts{batches: 12, messages: 50, held: 32, heldSeconds: 40.5, writes: 53, writeSeconds: 61}
	total.addDelta(after, before)
	want := batchCounts{batches: 3, messages: 32, held: 5, heldSeconds: 4.5, writes: 8, writeSeconds: 7}
	if total != want {
		t.Fatalf("got %+v, want %+v", total, want)
	}
}
