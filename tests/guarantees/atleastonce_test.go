//go:build integration

package guarantees

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// waitAcked blocks until the sender has seen n acknowledgements.
func waitAcked(t *testing.T, s *harness.Sender, n int, done <-chan harness.SendResult) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for s.AckedSoFar() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d acknowledgements after 2 minutes, waiting for %d", s.AckedSoFar(), n)
		}
		select {
		case <-done:
			t.Fatalf("the sender finished early with %d acknowledgements", s.AckedSoFar())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// 10,000 distinct events are sent by a provider-like sender while Postgres is
// stopped and restarted and hookpipe itself is killed with SIGKILL and
// restarted. Every event the sender saw acknowledged must be stored, each
// exactly once.
func TestAtLeastOnceThroughFaults(t *testing.T) {
	const n = 10000
	pg := harness.StartThrowawayPostgres(t)
	hp := harness.StartHookpipe(t, "configs/postgres.yaml", append(providerEnv, "HOOKPIPE_POSTGRES_DSN="+pg.DSN)...)
	deliveries := distinctDeliveries(t, n)

	sender := &harness.Sender{URL: hp.URL, Concurrency: 32, Backoff: harness.CityBackoff(6000)}
	done := make(chan harness.SendResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() { done <- sender.Send(ctx, deliveries) }()

	waitAcked(t, sender, n/4, done)
	t.Logf("fault 1: Postgres stopped at %d acknowledgements", sender.AckedSoFar())
	pg.Stop(t)
	time.Sleep(1500 * time.Millisecond)
	pg.Start(t)

	waitAcked(t, sender, n*55/100, done)
	t.Logf("fault 2: hookpipe killed (SIGKILL) at %d acknowledgements", sender.AckedSoFar())
	hp.Kill(t)
	time.Sleep(500 * time.Millisecond)
	hp.Restart(t)

	res := <-done
	stored := map[string]bool{}
	for _, id := range strings.Fields(pg.Psql(t, "SELECT id FROM events")) {
		stored[id] = true
	}
	duplicates := strings.TrimSpace(pg.Psql(t, "SELECT count(*) - count(DISTINCT id) FROM events"))
	missing := 0
	for id := range res.Acked {
		if !stored[id] {
			missing++
		}
	}
	t.Logf("sent %d events in %d requests; acknowledged %d, gave up %d; stored %d, duplicates %s; replies %v",
		n, res.Attempts, len(res.Acked), res.GaveUp, len(stored), duplicates, res.Statuses)
	if missing > 0 {
		t.Fatalf("%d acknowledged events are not stored", missing)
	}
	if duplicates != "0" {
		t.Fatalf("%s events stored more than once", duplicates)
	}
	if res.Statuses[503] == 0 && res.Statuses[0] == 0 {
		t.Fatal("no request failed: the faults were not injected")
	}
	// Events hookpipe stored but never acknowledged (killed mid-request) are
	// fine; events stored that were never sent are not.
	want := map[string]bool{}
	for _, d := range deliveries {
		want[d.EventID] = true
	}
	for id := range stored {
		if !want[id] {
			t.Fatalf("stored an event that was never sent: %s", id)
		}
	}
	if len(res.Acked) < n*99/100 {
		t.Fatalf("only %d of %d events were acknowledged even with retries", len(res.Acked), n)
	}
}

// The same through Kafka, a sink that is not idempotent: the broker is
// stopped and restarted, then hookpipe is killed with SIGKILL and restarted.
// Every acknowledged event must be in its topic; copies are counted
// (deliver_once suppresses the retries of events it saw written, but its
// memory cache does not survive SIGKILL).
func TestAtLeastOnceThroughKafkaFaults(t *testing.T) {
	const n = 10000
	kafka := harness.Kafka(t, harness.KafkaRestartable())
	hp := harness.StartHookpipe(t, "configs/kafka.yaml", append(providerEnv,
		"HOOKPIPE_KAFKA_BROKERS="+kafka.Brokers, "HOOKPIPE_KAFKA_TOPIC_PREFIX=faults.")...)
	deliveries := distinctDeliveries(t, n)

	sender := &harness.Sender{URL: hp.URL, Concurrency: 32, Backoff: harness.CityBackoff(6000)}
	done := make(chan harness.SendResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() { done <- sender.Send(ctx, deliveries) }()

	waitAcked(t, sender, n/4, done)
	t.Logf("fault 1: broker stopped at %d acknowledgements", sender.AckedSoFar())
	kafka.Stop()
	time.Sleep(1500 * time.Millisecond)
	kafka.Start()

	waitAcked(t, sender, n*55/100, done)
	t.Logf("fault 2: hookpipe killed (SIGKILL) at %d acknowledgements", sender.AckedSoFar())
	hp.Kill(t)
	time.Sleep(500 * time.Millisecond)
	hp.Restart(t)

	res := <-done
	records := harness.ConsumeTopicsWithKcat(t, kafka.Brokers, map[string]int{
		"faults.org.controlshift.signature.created": 0,
		"faults.org.thecity.user.update":            0,
	})
	copies := map[string]int{}
	total := 0
	for _, rs := range records {
		for _, r := range rs {
			id, _ := r.Header("ce_id")
			copies[id]++
			total++
		}
	}
	missing := 0
	for id := range res.Acked {
		if copies[id] == 0 {
			missing++
		}
	}
	t.Logf("sent %d events in %d requests; acknowledged %d, gave up %d; %d records for %d distinct events (%d extra copies); replies %v",
		n, res.Attempts, len(res.Acked), res.GaveUp, total, len(copies), total-len(copies), res.Statuses)
	if missing > 0 {
		t.Fatalf("%d acknowledged events are not in Kafka", missing)
	}
	if len(res.Acked) < n*99/100 {
		t.Fatalf("only %d of %d events were acknowledged even with retries", len(res.Acked), n)
	}
}
