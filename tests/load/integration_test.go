//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
)

// TestSmokeSinksStoreEvery200 runs the smoke version of the Postgres (d) and
// Kafka (e) scenarios against real servers found or started by the test
// harness, and checks the promise behind every 200: the sink holds exactly
// one row or record per request answered 200. An unavailable service fails
// the test.
func TestSmokeSinksStoreEvery200(t *testing.T) {
	var out strings.Builder
	rep, err := run(context.Background(), smokeOptions("d", "e"), &out, false)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
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
