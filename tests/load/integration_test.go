//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
)

// TestSmokeSinksStoreEvery200 runs the smoke version of the Postgres (d) and
// Kafka (e) scenarios side by side with (c) and its half-peak turns, against
// real servers found or started by the test harness, and checks the promise
// behind every 200: the sink holds exactly one row or record per request
// answered 200. An unavailable service fails the test.
func TestSmokeSinksStoreEvery200(t *testing.T) {
	var out strings.Builder
	opts := smokeOptions("c", "d", "e")
	opts.halfPeak = true
	rep, err := run(context.Background(), opts, &out, false)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	c := checkClean(t, rep, "c")
	// The half-peak turns follow (c)'s, at half of what (c) just did.
	half := checkClean(t, rep, "c-half")
	if half.RPS <= 0 || half.RPS > c.RPS || !strings.Contains(half.Title, "req/s offered") {
		t.Errorf("c at half of its peak: %.0f req/s (%s), c at peak %.0f", half.RPS, half.Title, c.RPS)
	}
	// 1 s in turns of 250 ms: four cycles, each pairing both sinks with c.
	if len(rep.Cycles) != 4 {
		t.Errorf("%d cycles of turns, want 4", len(rep.Cycles))
	}
	for i, c := range rep.Cycles {
		if c.Ratios["d/c"] <= 0 || c.Ratios["e/c"] <= 0 || c.CPURatios["d/c"] <= 0 {
			t.Errorf("cycle %d: ratios %v, per CPU-second %v", i, c.Ratios, c.CPURatios)
		}
	}
	for _, key := range []string{"d", "e"} {
		r := checkClean(t, rep, key)
		v := r.Stored
		if v == nil {
			t.Fatalf("scenario %s: nothing counted", key)
		}
		if v.Accepted == 0 || v.Accepted != v.Sent || v.Stored != v.Accepted {
			t.Errorf("scenario %s: sent %d, answered 200 %d, stored %d (%s)", key, v.Sent, v.Accepted, v.Stored, v.Detail)
		}
	}
}
