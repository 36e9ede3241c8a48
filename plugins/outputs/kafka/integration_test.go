//go:build integration

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/hookpipe/hookpipe/plugins/health"
	"github.com/hookpipe/hookpipe/tests/harness"
)

// runStream runs a stream whose input is the returned function and whose
// output is the given kafka_franz config. Calling the function blocks until
// the output acknowledged the batch (nil) or failed it.
func runStream(t *testing.T, outputYAML string) service.MessageBatchHandlerFunc {
	produce, _ := runStoppableStream(t, outputYAML, nil)
	return produce
}

// lockedBuffer collects log lines written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runStoppableStream is runStream that also returns a function stopping the
// stream within a timeout, returning whether it stopped. Error logs go to
// logs when it is not nil.
func runStoppableStream(t *testing.T, outputYAML string, logs *lockedBuffer) (service.MessageBatchHandlerFunc, func(time.Duration) bool) {
	t.Helper()
	b := service.NewStreamBuilder()
	if logs != nil {
		b.SetLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError})))
	} else if err := b.SetLoggerYAML("level: error"); err != nil {
		t.Fatal(err)
	}
	produce, err := b.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(outputYAML); err != nil {
		t.Fatalf("output config: %v", err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stream.Run(context.Background()) }()
	var once sync.Once
	stopped := false
	stop := func(within time.Duration) bool {
		once.Do(func() {
			_ = stream.StopWithin(within)
			select {
			case <-done:
				stopped = true
			case <-time.After(within + 5*time.Second):
			}
		})
		return stopped
	}
	t.Cleanup(func() {
		if !stop(10 * time.Second) {
			t.Error("stream did not stop")
		}
	})
	return produce, stop
}

// topicPrefix keeps topics of different runs apart on a shared broker.
func topicPrefix() string {
	return fmt.Sprintf("hp%08x", rand.Uint32())
}

func envelope(id, typ, subject string, n int) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"hookpipe/controlshift","type":%q,`+
		`"subject":%q,"time":"2024-05-01T10:00:%02dZ","datacontenttype":"application/json",`+
		`"provider":"controlshift","data":{"n":%d,"note":"ünïcode & <tags>"}}`, id, typ, subject, n, n)
}

func sendBatch(t *testing.T, produce service.MessageBatchHandlerFunc, within time.Duration, msgs ...*service.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return produce(ctx, service.MessageBatch(msgs))
}

// headers pairs up keys and values.
func headers(kv ...string) []harness.KcatHeader {
	var hs []harness.KcatHeader
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, harness.KcatHeader{Key: kv[i], Value: kv[i+1]})
	}
	return hs
}

type sent struct {
	topic, key, value string
	headers           []harness.KcatHeader
}

func TestIntegrationRoutesEventsByType(t *testing.T) {
	broker := harness.Kafka(t)

	for _, compression := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(compression, func(t *testing.T) {
			prefix := topicPrefix()
			produce := runStream(t, fmt.Sprintf(`
kafka_franz:
  seed_brokers: [ %q ]
  topic: '%s.${! json("type") }'
  key: '${! json("subject") }'
  cloudevents_headers: true
  compression: %s
  metadata:
    include_prefixes: [ hookpipe_ ]
  batching:
    count: 3
`, broker.Brokers, prefix, compression))

			types := []string{"petition.created", "petition.updated"}
			subjects := []string{"petition/1", "petition/2", "petition/3"}
			var msgs []*service.Message
			var want []sent
			for i := range 8 {
				typ, subject := types[i%2], subjects[i%3]
				id := fmt.Sprintf("evt-%d", i)
				value := envelope(id, typ, subject, i)
				m := service.NewMessage(value)
				m.MetaSetMut("hookpipe_provider", "controlshift")
				m.MetaSetMut("hookpipe_event_id", id)
				m.MetaSetMut("http_user_agent", "not copied")
				msgs = append(msgs, m)
				want = append(want, sent{
					topic: prefix + "." + typ, key: subject, value: string(value),
					headers: headers(
						"hookpipe_event_id", id, "hookpipe_provider", "controlshift",
						"ce_specversion", "1.0", "ce_id", id, "ce_source", "hookpipe/controlshift",
						"ce_type", typ, "ce_subject", subject,
						"ce_time", fmt.Sprintf("2024-05-01T10:00:%02dZ", i),
						"ce_provider", "controlshift", "content-type", "application/cloudevents+json",
					),
				})
			}
			// Not an envelope: written as it is, with metadata headers only.
			raw := `{"type":"unknown.raw","subject":"thing/9","payload":"x"}`
			m := service.NewMessage([]byte(raw))
			m.MetaSetMut("hookpipe_event_id", "raw-1")
			msgs = append(msgs, m)
			want = append(want, sent{
				topic: prefix + ".unknown.raw", key: "thing/9", value: raw,
				headers: headers("hookpipe_event_id", "raw-1"),
			})

			// The producer hands out batches of 9; the output's
			// batching policy regroups them into threes.
			if err := sendBatch(t, produce, 30*time.Second, msgs...); err != nil {
				t.Fatalf("write: %v", err)
			}

			byTopic := map[string][]sent{}
			for _, w := range want {
				byTopic[w.topic] = append(byTopic[w.topic], w)
			}
			for topic, wants := range byTopic {
				got := harness.ConsumeWithKcat(t, broker.Brokers, topic, len(wants))
				if len(got) != len(wants) {
					t.Fatalf("%s: %d records, want %d", topic, len(got), len(wants))
				}
				byValue := map[string]harness.KcatRecord{}
				partitionOfKey := map[string]int32{}
				for _, r := range got {
					byValue[r.Value] = r
					if p, ok := partitionOfKey[r.Key]; ok && p != r.Partition {
						t.Errorf("%s: key %q on partitions %d and %d", topic, r.Key, p, r.Partition)
					}
					partitionOfKey[r.Key] = r.Partition
				}
				for _, w := range wants {
					r, ok := byValue[w.value]
					if !ok {
						t.Errorf("%s: value not found byte for byte: %s", topic, w.value)
						continue
					}
					if r.Topic != w.topic || !r.HasKey || r.Key != w.key {
						t.Errorf("record topic %q key %q (has %v), want %q %q", r.Topic, r.Key, r.HasKey, w.topic, w.key)
					}
					if fmt.Sprint(r.Headers) != fmt.Sprint(w.headers) {
						t.Errorf("headers of %s:\n got %v\nwant %v", w.value, r.Headers, w.headers)
					}
				}
			}
		})
	}
}

func TestIntegrationManualPartition(t *testing.T) {
	broker := harness.Kafka(t)
	topic := topicPrefix() + ".manual"
	produce := runStream(t, fmt.Sprintf(`
kafka_franz:
  seed_brokers: [ %q ]
  topic: %s
  partitioner: manual
  partition: '${! meta("p") }'
`, broker.Brokers, topic))

	var msgs []*service.Message
	for _, p := range []string{"2", "0", "1", "2"} {
		m := service.NewMessage([]byte("to partition " + p))
		m.MetaSetMut("p", p)
		msgs = append(msgs, m)
	}
	if err := sendBatch(t, produce, 30*time.Second, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
	for _, r := range harness.ConsumeWithKcat(t, broker.Brokers, topic, len(msgs)) {
		if want := "to partition " + fmt.Sprint(r.Partition); r.Value != want {
			t.Errorf("partition %d holds %q", r.Partition, r.Value)
		}
		if r.HasKey {
			t.Errorf("record without key field has key %q", r.Key)
		}
	}
}

// feedInput is a batch input that hands the engine the batches sent to it
// and reports each batch's outcome exactly as the engine gives it to an
// input, so per-message results can be checked as a real input sees them.
type feedInput struct{ items chan feedItem }

type feedItem struct {
	batch  service.MessageBatch
	result chan error
}

func (f *feedInput) Connect(context.Context) error { return nil }

func (f *feedInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	select {
	case it := <-f.items:
		return it.batch, func(_ context.Context, err error) error {
			it.result <- err
			return nil
		}, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

func (f *feedInput) Close(context.Context) error { return nil }

func TestIntegrationPartialBatchFailure(t *testing.T) {
	broker := harness.Kafka(t)
	topic := topicPrefix() + ".partial"

	feed := &feedInput{items: make(chan feedItem)}
	env := service.NewEnvironment()
	if err := env.RegisterBatchInput("test_feed", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.BatchInput, error) { return feed, nil }); err != nil {
		t.Fatal(err)
	}
	b := env.NewStreamBuilder()
	if err := b.SetLoggerYAML("level: none"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddInputYAML("test_feed: {}"); err != nil {
		t.Fatal(err)
	}
	// The topic of the second message cannot be resolved (its value is not
	// JSON), so only it fails; the others are written.
	if err := b.AddOutputYAML(fmt.Sprintf(`
kafka_franz:
  seed_brokers: [ %q ]
  topic: '%s${! json("suffix") }'
`, broker.Brokers, topic)); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stream.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = stream.StopWithin(10 * time.Second)
		<-done
	})

	batch := service.MessageBatch{
		service.NewMessage([]byte(`{"suffix":"","n":1}`)),
		service.NewMessage([]byte(`not json`)),
		service.NewMessage([]byte(`{"suffix":"","n":3}`)),
	}
	indexer := batch.Index()
	item := feedItem{batch: batch, result: make(chan error, 1)}
	feed.items <- item
	var ackErr error
	select {
	case ackErr = <-item.result:
	case <-time.After(30 * time.Second):
		t.Fatal("batch not acknowledged within 30s")
	}

	var bErr *service.BatchError
	if !errors.As(ackErr, &bErr) {
		t.Fatalf("input got %v, want a *service.BatchError", ackErr)
	}
	var failed []int
	bErr.WalkMessagesIndexedBy(indexer, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed = append(failed, i)
		}
		return true
	})
	if fmt.Sprint(failed) != "[1]" {
		t.Errorf("failed messages %v, want only [1]", failed)
	}
	var values []string
	for _, r := range harness.ConsumeWithKcat(t, broker.Brokers, topic, 2) {
		values = append(values, r.Value)
	}
	if len(values) != 2 || !strings.Contains(strings.Join(values, " "), `"n":1`) || !strings.Contains(strings.Join(values, " "), `"n":3`) {
		t.Errorf("records %v, want messages 1 and 3", values)
	}
}

func TestIntegrationBrokerOutage(t *testing.T) {
	broker := harness.Kafka(t, harness.KafkaRestartable())
	topic := topicPrefix() + ".outage"
	conf := fmt.Sprintf(`
kafka_franz:
  seed_brokers: [ %q ]
  topic: %s
  key: '${! meta("k") }'
  max_in_flight: 1
`, broker.Brokers, topic)
	msg := func(s string) *service.Message {
		m := service.NewMessage([]byte(s))
		m.MetaSetMut("k", s)
		return m
	}

	// Without idempotence a record may be failed once its delivery
	// timeout passes, so an outage turns into nacks.
	t.Run("nack after delivery timeout", func(t *testing.T) {
		produce := runStream(t, conf+"  idempotent_write: false\n  record_delivery_timeout: 2s\n")
		if err := sendBatch(t, produce, 30*time.Second, msg("before")); err != nil {
			t.Fatalf("write while up: %v", err)
		}

		broker.Stop()
		start := time.Now()
		err := sendBatch(t, produce, 30*time.Second, msg("during"))
		if err == nil {
			t.Fatal("write acknowledged while the broker was down")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write neither failed nor succeeded in %s: %v", time.Since(start), err)
		}
		t.Logf("write during outage failed after %s: %v", time.Since(start).Round(time.Millisecond), err)

		broker.Start()
		// As an input would, deliver the nacked message again until it is
		// acknowledged: the first tries can still time out while the
		// client reconnects.
		start = time.Now()
		for attempt := 1; ; attempt++ {
			err := sendBatch(t, produce, 30*time.Second, msg("during"))
			if err == nil {
				t.Logf("redelivery acknowledged on attempt %d, %s after the restart", attempt, time.Since(start).Round(time.Millisecond))
				break
			}
			if time.Since(start) > 60*time.Second {
				t.Fatalf("write after restart still failing after 60s: %v", err)
			}
		}
		if err := sendBatch(t, produce, 30*time.Second, msg("after")); err != nil {
			t.Fatalf("write after restart: %v", err)
		}
	})

	// With the defaults (idempotent, no delivery timeout) a write is held,
	// never acknowledged, until the broker answers.
	t.Run("held until the broker is back", func(t *testing.T) {
		produce := runStream(t, conf)
		if err := sendBatch(t, produce, 30*time.Second, msg("warmup")); err != nil {
			t.Fatalf("write while up: %v", err)
		}

		broker.Stop()
		result := make(chan error, 1)
		go func() { result <- sendBatch(t, produce, 90*time.Second, msg("held")) }()
		select {
		case err := <-result:
			t.Fatalf("write finished while the broker was down: %v", err)
		case <-time.After(3 * time.Second):
		}

		broker.Start()
		select {
		case err := <-result:
			if err != nil {
				t.Fatalf("held write failed after restart: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("held write not acknowledged within 60s of the restart")
		}
	})

	// Shutting down while a write is held fails it instead of hanging.
	t.Run("shutdown during an outage", func(t *testing.T) {
		var logs lockedBuffer
		produce, stop := runStoppableStream(t, conf, &logs)
		if err := sendBatch(t, produce, 30*time.Second, msg("pre-shutdown")); err != nil {
			t.Fatalf("write while up: %v", err)
		}
		broker.Stop()
		defer broker.Start()
		result := make(chan error, 1)
		go func() { result <- sendBatch(t, produce, 8*time.Second, msg("at-shutdown")) }()
		time.Sleep(time.Second)
		if !stop(5 * time.Second) {
			t.Fatal("stream did not stop while a write was held")
		}
		// The engine may drop the nack of an input that is shutting down,
		// so the producer can also just time out; it must not succeed.
		if err := <-result; err == nil {
			t.Error("held write acknowledged although the broker was down")
		}
		if !strings.Contains(logs.String(), "no broker answer before shutdown") {
			t.Errorf("the output did not fail the held write at shutdown; logs:\n%s", logs.String())
		}
	})

	// The broker kept its data across both restarts: every acknowledged
	// record is there. The idempotent stream's records are there exactly
	// once; the other stream's redelivered record is there at least once
	// (without idempotence a retried record may be duplicated).
	got := harness.ConsumeWithKcat(t, broker.Brokers, topic, 6)
	counts := map[string]int{}
	var values []string
	for _, r := range got {
		counts[r.Value]++
		values = append(values, r.Value)
	}
	for v, exactly := range map[string]bool{"before": true, "warmup": true, "held": true, "pre-shutdown": true, "during": false, "after": false} {
		if counts[v] == 0 || (exactly && counts[v] != 1) {
			t.Errorf("record %q written %d times; all records: %v", v, counts[v], values)
		}
	}
}

func TestIntegrationSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			broker := harness.Kafka(t, harness.KafkaSASL(mech, "hookpipe", "test-pass-1"))
			topic := topicPrefix() + ".sasl"
			conf := `
kafka_franz:
  seed_brokers: [ %q ]
  topic: %s
  sasl:
    - mechanism: %s
      username: hookpipe
      password: %s
`
			produce := runStream(t, fmt.Sprintf(conf, broker.Brokers, topic, mech, "test-pass-1"))
			if err := sendBatch(t, produce, 30*time.Second, service.NewMessage([]byte("authenticated"))); err != nil {
				t.Fatalf("write: %v", err)
			}
			var auth sasl.Mechanism
			switch mech {
			case "PLAIN":
				auth = plain.Auth{User: "hookpipe", Pass: "test-pass-1"}.AsMechanism()
			case "SCRAM-SHA-256":
				auth = scram.Auth{User: "hookpipe", Pass: "test-pass-1"}.AsSha256Mechanism()
			default:
				auth = scram.Auth{User: "hookpipe", Pass: "test-pass-1"}.AsSha512Mechanism()
			}
			got := consumeWithFranz(t, broker.Brokers, topic, 1, kgo.SASL(auth))
			if len(got) != 1 || string(got[0].Value) != "authenticated" {
				t.Errorf("records %+v", got)
			}

			var logs lockedBuffer
			wrong, stop := runStoppableStream(t, fmt.Sprintf(conf, broker.Brokers, topic+"x", mech, "wrong-pass"), &logs)
			if err := sendBatch(t, wrong, 3*time.Second, service.NewMessage([]byte("x"))); err == nil {
				t.Error("write with a wrong password was acknowledged")
			}
			// The unwritable message would hold a graceful stop to its
			// timeout; a short one will do.
			stop(time.Second)
			if strings.Contains(logs.String(), "wrong-pass") {
				t.Errorf("logs leak the password:\n%s", logs.String())
			}
		})
	}
}

// The readiness probe the output registers for the webhook input's /readyz:
// it fails before the output connected and while the broker is down, passes
// while a broker answers, and is removed by Close.
func TestIntegrationReadinessProbe(t *testing.T) {
	broker := harness.Kafka(t, harness.KafkaRestartable())
	conf, err := franzOutputSpec().ParseYAML(fmt.Sprintf(`
seed_brokers: [ %q ]
topic: %s
`, broker.Brokers, topicPrefix()+".probe"), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := service.MockResources()
	o, err := newStreamFranzOutput(conf, res)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	probes := health.For(res).Probes()
	if len(probes) != 1 || !strings.HasPrefix(probes[0].Name, "kafka_franz") {
		t.Fatalf("probes %v, want the output's", probes)
	}
	probe := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return probes[0].Check(ctx)
	}
	// waitProbe polls the probe until its outcome is the wanted one.
	waitProbe := func(pass bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			err := probe()
			if (err == nil) == pass {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("probe still %v after 60s, want passing=%v", err, pass)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	ctx := context.Background()
	if err := probe(); !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("probe before Connect: %v, want service.ErrNotConnected", err)
	}
	if err := o.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := probe(); err != nil {
		t.Fatalf("probe while connected: %v", err)
	}

	broker.Stop()
	waitProbe(false)
	if err := probe(); err == nil || !strings.Contains(err.Error(), "no broker answered") {
		t.Errorf("probe with the broker down: %v", err)
	}

	broker.Start()
	waitProbe(true)
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(health.For(res).Probes()); n != 0 {
		t.Errorf("%d probes left after Close", n)
	}
}
