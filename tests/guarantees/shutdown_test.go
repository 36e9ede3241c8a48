//go:build integration

package guarantees

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// SIGTERM in the middle of a burst: hookpipe stops accepting, gives every
// in-flight request its true answer, and exits 0 in bounded time. Every
// request answered 200 is stored.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	pg := harness.Postgres(t)
	hp := harness.StartHookpipe(t, "configs/postgres.yaml", append(providerEnv, "HOOKPIPE_POSTGRES_DSN="+pg.DSN)...)
	deliveries := distinctDeliveries(t, 4000)

	// No retries: each request's one answer is what is checked.
	sender := &harness.Sender{URL: hp.URL, Concurrency: 32}
	done := make(chan harness.SendResult, 1)
	go func() { done <- sender.Send(context.Background(), deliveries) }()
	waitAcked(t, sender, 500, done)

	start := time.Now()
	if err := hp.Terminate(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, harness.TailFile(hp.LogPath, 3000))
	}
	took := time.Since(start)
	res := <-done

	stored := map[string]bool{}
	for _, id := range strings.Fields(pg.Psql(t, "SELECT id FROM events")) {
		stored[id] = true
	}
	for id := range res.Acked {
		if !stored[id] {
			t.Errorf("event %s was answered 200 but is not stored", id)
		}
	}
	t.Logf("SIGTERM after %d acknowledgements: exited 0 in %s; %d answered 200, %d stored; replies %v",
		500, took.Round(time.Millisecond), len(res.Acked), len(stored), res.Statuses)
	for status := range res.Statuses {
		if status != 200 && status != 503 && status != 0 {
			t.Errorf("%d requests answered %d during shutdown; want only 200, 503 or a refused connection", res.Statuses[status], status)
		}
	}
}
