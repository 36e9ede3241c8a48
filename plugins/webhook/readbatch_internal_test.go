package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// Tests that play the engine's part themselves: they call ReadBatch and
// acknowledge batches when they choose.

// pendingTestServer is a connected webhook_server with one endpoint that
// takes any body, driven through ReadBatch by the test itself. A batch
// waits for a slot as long as a request waits for its acknowledgement.
func pendingTestServer(t *testing.T, maxPending int) (*webhookServer, string) {
	return testServer(t, maxPending, 5*time.Second, 5*time.Second)
}

// testServer is pendingTestServer with the acknowledgement timeout and
// max_pending_wait given.
func testServer(t *testing.T, maxPending int, timeout, pendingWait time.Duration) (*webhookServer, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	conf, err := inputSpec().ParseYAML(fmt.Sprintf(`
address: %s
timeout: %s
max_pending_batches: %d
max_pending_wait: %s
health: { drain_on_signal: false }
endpoints:
  - { path: /hook, provider: test, auth: { allow_unauthenticated: true } }
`, addr, timeout, maxPending, pendingWait), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWebhookServer(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w, "http://" + addr + "/hook"
}

// post sends one webhook in the background; its status arrives on the
// returned channel.
func post(t *testing.T, url string, n int) <-chan int {
	t.Helper()
	status := make(chan int, 1)
	go func() {
		res, err := http.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, n)))
		if err != nil {
			status <- 0
			return
		}
		res.Body.Close()
		status <- res.StatusCode
	}()
	return status
}

// waitQueued waits until n requests wait to be taken by the pipeline.
func waitQueued(t *testing.T, w *webhookServer, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.ready.queued.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", w.ready.queued.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type readResult struct {
	batch service.MessageBatch
	ack   service.AckFunc
	err   error
}

func readInBackground(ctx context.Context, w *webhookServer) <-chan readResult {
	out := make(chan readResult, 1)
	go func() {
		b, ack, err := w.ReadBatch(ctx)
		out <- readResult{b, ack, err}
	}()
	return out
}

// readOneRequest posts request i, waits for it to queue, and reads it as a
// batch of one, returning its reply status channel and the batch's ack.
func readOneRequest(t *testing.T, w *webhookServer, url string, i int) (<-chan int, service.AckFunc) {
	t.Helper()
	status := post(t, url, i)
	waitQueued(t, w, 1)
	batch, ack, err := w.ReadBatch(context.Background())
	if err != nil || len(batch) != 1 {
		t.Fatalf("batch of request %d: %d messages, error %v", i, len(batch), err)
	}
	return status, ack
}

// With max_pending_batches reached, the next batch is held until a pending
// one is acknowledged, and everything that arrived meanwhile goes into it.
func TestMaxPendingBatchesGathersWhileBusy(t *testing.T) {
	w, url := pendingTestServer(t, 1)
	ctx := context.Background()

	first, ack := readOneRequest(t, w, url, 0)

	var later []<-chan int
	for i := 1; i <= 3; i++ {
		later = append(later, post(t, url, i))
	}
	waitQueued(t, w, 3)
	next := readInBackground(ctx, w)
	select {
	case r := <-next:
		t.Fatalf("a second batch (%d messages, error %v) was handed over while the first was pending", len(r.batch), r.err)
	case <-time.After(100 * time.Millisecond):
	}

	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if s := <-first; s != http.StatusOK {
		t.Errorf("first request: status %d, want 200", s)
	}
	var r readResult
	select {
	case r = <-next:
	case <-time.After(5 * time.Second):
		t.Fatal("no batch after the pending one was acknowledged")
	}
	if r.err != nil || len(r.batch) != 3 {
		t.Fatalf("second batch: %d messages, error %v; want the 3 that waited", len(r.batch), r.err)
	}
	if err := r.ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for i, s := range later {
		if got := <-s; got != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i+1, got)
		}
	}
}

// A failed write frees the slot as well: the next batch goes out, and the
// failed request is answered 503.
func TestMaxPendingBatchesFreedByNack(t *testing.T) {
	w, url := pendingTestServer(t, 1)
	ctx := context.Background()
	failed, ack := readOneRequest(t, w, url, 0)
	if err := ack(ctx, errors.New("sink down")); err != nil {
		t.Fatal(err)
	}
	if s := <-failed; s != http.StatusServiceUnavailable {
		t.Errorf("nacked request: status %d, want 503", s)
	}
	ok := post(t, url, 1)
	waitQueued(t, w, 1)
	r := readInBackground(ctx, w)
	select {
	case res := <-r:
		if res.err != nil || len(res.batch) != 1 {
			t.Fatalf("batch after the nack: %d messages, error %v", len(res.batch), res.err)
		}
		if err := res.ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the nacked batch still holds its slot")
	}
	if s := <-ok; s != http.StatusOK {
		t.Errorf("status %d, want 200", s)
	}
}

// A ReadBatch waiting for a slot ends when the engine stops reading or the
// input closes, so shutdown never waits on a batch that will not be acked.
func TestMaxPendingBatchesWaitEndsAtShutdown(t *testing.T) {
	for _, stop := range []string{"context", "close"} {
		t.Run(stop, func(t *testing.T) {
			w, url := pendingTestServer(t, 1)
			readOneRequest(t, w, url, 0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := readInBackground(ctx, w)
			if stop == "context" {
				cancel()
			} else {
				go func() { _ = w.Close(context.Background()) }()
			}
			select {
			case res := <-r:
				if res.err == nil {
					t.Fatalf("ReadBatch returned %d messages and no error", len(res.batch))
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadBatch still waits for a slot")
			}
		})
	}
}

// A batch waits for a slot at most max_pending_wait, then goes beyond the
// limit without taking a slot: an output that holds acknowledgements back
// slows the input down instead of stopping it.
func TestMaxPendingWaitIsBounded(t *testing.T) {
	const wait = 100 * time.Millisecond
	w, url := testServer(t, 1, 5*time.Second, wait)
	ctx := context.Background()
	first, ackFirst := readOneRequest(t, w, url, 0)
	second := post(t, url, 1)
	waitQueued(t, w, 1)
	start := time.Now()
	var r readResult
	select {
	case r = <-readInBackground(ctx, w):
	case <-time.After(5 * time.Second):
		t.Fatal("the batch still waits for a slot after max_pending_wait")
	}
	if r.err != nil || len(r.batch) != 1 {
		t.Fatalf("batch beyond the limit: %d messages, error %v", len(r.batch), r.err)
	}
	if waited := time.Since(start); waited < wait {
		t.Errorf("handed over beyond the limit after %s, before max_pending_wait", waited)
	}
	// The batch beyond the limit holds no slot: its acknowledgement frees
	// none, the first batch's does.
	if err := r.ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(w.batchSlots); n != 1 {
		t.Fatalf("%d slots taken after the batch beyond the limit was acknowledged, want 1", n)
	}
	if err := ackFirst(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(w.batchSlots); n != 0 {
		t.Fatalf("%d slots taken after both were acknowledged", n)
	}
	// A second acknowledgement of the same batch changes nothing.
	if err := ackFirst(ctx, nil); err != nil || len(w.batchSlots) != 0 {
		t.Fatalf("acknowledging twice: %v, %d slots taken", err, len(w.batchSlots))
	}
	for i, s := range []<-chan int{first, second} {
		if got := <-s; got != http.StatusOK {
			t.Errorf("request %d: status %d", i, got)
		}
	}
}

// Without a limit (the default) batches go out while others are pending.
func TestNoPendingBatchLimitByDefault(t *testing.T) {
	w, url := pendingTestServer(t, 0)
	ctx := context.Background()
	readOneRequest(t, w, url, 0)
	post(t, url, 1)
	waitQueued(t, w, 1)
	select {
	case r := <-readInBackground(ctx, w):
		if r.err != nil || len(r.batch) != 1 {
			t.Fatalf("%d messages, error %v", len(r.batch), r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second batch waited for the first without a limit")
	}
}

// The acknowledgement timers are reused from request to request: one that
// fired or was stopped must time the next request from its own start.
func TestAckTimersReused(t *testing.T) {
	const timeout = 300 * time.Millisecond
	w, url := testServer(t, 0, timeout, time.Second)
	ctx := context.Background()
	for i, ack := range []bool{true, false, false, true, true, false} {
		start := time.Now()
		status := post(t, url, i)
		waitQueued(t, w, 1)
		_, ackFn, err := w.ReadBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusServiceUnavailable
		if ack {
			want = http.StatusOK
			if err := ackFn(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		if got := <-status; got != want {
			t.Fatalf("request %d: status %d, want %d", i, got, want)
		}
		if !ack && time.Since(start) < timeout {
			t.Fatalf("request %d timed out after %s, before its %s", i, time.Since(start), timeout)
		}
		if !ack {
			// Its message was taken; the late acknowledgement is ignored.
			_ = ackFn(ctx, nil)
		}
	}
}
