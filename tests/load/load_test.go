package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// smokeOptions is the CI smoke run (-smoke) of the given scenarios.
func smokeOptions(scenarios ...string) options {
	return options{
		scenarios:   scenarios,
		duration:    time.Second,
		concurrency: 8,
		warmup:      200 * time.Millisecond,
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
		if r.P50Ms <= 0 || r.P999Ms < r.P99Ms || r.P99Ms < r.P50Ms || r.PeakRSSMiB <= 0 {
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
	rep, err := run(context.Background(), smokeOptions("a", "c"), &out, false)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, rep, "a")
	checkClean(t, rep, "c")
	if _, ok := rep.Ratios["c/a"]; !ok {
		t.Errorf("no c/a ratio: %v", rep.Ratios)
	}
	if code := rep.exitCode(options{requireAll: true}); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
