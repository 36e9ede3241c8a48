package webhook

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func testReadiness(t *testing.T, drainOnSignal bool) *readiness {
	t.Helper()
	r := newReadiness(healthConf{
		livePath: "/healthz", readyPath: "/readyz",
		probeInterval: time.Hour, probeTimeout: time.Second, stallAfter: 50 * time.Millisecond,
		drainOnSignal: drainOnSignal,
	}, service.MockResources())
	t.Cleanup(r.close)
	return r
}

// SIGTERM fails readiness at once; the process is not ended by it (the
// engine's own handler decides when to stop).
func TestSIGTERMDrains(t *testing.T) {
	r := testReadiness(t, true)
	r.start()
	if reasons := r.reasons(); len(reasons) != 0 {
		t.Fatalf("not ready before the signal: %v", reasons)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !r.draining.Load() {
		if time.Now().After(deadline) {
			t.Fatal("SIGTERM did not start draining")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if reasons := r.reasons(); !slices.Contains(reasons, "shutting down") {
		t.Errorf("reasons %v", reasons)
	}
}

// A request waiting in the queue is a stall only when the pipeline is not
// waiting for requests and has not taken one for stall_after.
func TestStallDetection(t *testing.T) {
	r := testReadiness(t, false)
	r.queued.Add(1)
	r.took()
	if reasons := r.reasons(); len(reasons) != 0 {
		t.Fatalf("stalled right after a take: %v", reasons)
	}
	time.Sleep(80 * time.Millisecond)
	if reasons := r.reasons(); !slices.Contains(reasons, "pipeline not taking requests") {
		t.Fatalf("not stalled after stall_after: %v", reasons)
	}
	r.waiting.Store(true)
	if reasons := r.reasons(); len(reasons) != 0 {
		t.Fatalf("stalled while the pipeline waits for requests: %v", reasons)
	}
	r.waiting.Store(false)
	r.queued.Add(-1)
	if reasons := r.reasons(); len(reasons) != 0 {
		t.Fatalf("stalled with nothing queued: %v", reasons)
	}
}
