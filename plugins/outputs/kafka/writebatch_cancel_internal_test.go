package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// When a write gives up at shutdown, the client still holds the records it
// sent and delivers them later, so their value buffers must stay out of the
// pool: a later batch reusing one would change what the broker receives, and
// a released record's value, cleared, would lose the record.
func TestWriteBatchCancelKeepsUnansweredBuffers(t *testing.T) {
	const (
		topic = "hookpipe.held"
		n     = 8
		wait  = 5 * time.Second
	)

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addr := cluster.ListenAddrs()[0]

	// Also a cleanup, so a held request is let go when the test stops
	// early, before the cluster closes.
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo)

	// Idempotent writes (the default): a record that was sent is never
	// failed by the client, since the broker may have it, so the client
	// keeps it after the write gave up.
	o := newOutput(t, fmt.Sprintf(`
seed_brokers: [ %q ]
topic: %s
idempotent_write: true
compression: none
`, addr, topic))
	connectCtx, cancelConnect := context.WithTimeout(context.Background(), wait)
	defer cancelConnect()
	if err := o.Connect(connectCtx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	cl := o.client

	// The producer ID is loaded on the first produce. Holding it until the
	// whole batch is buffered puts every record into the one request held
	// below: a record still unsent when the ctx ends is failed, not kept.
	cluster.ControlKey(kmsg.InitProducerID.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.DropControl() // the first request only
		cluster.SleepControl(func() {
			for deadline := time.Now().Add(wait); cl.BufferedProduceRecords() < n && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		})
		return nil, nil, false
	})

	// The first produce request gets no answer until the test lets it go,
	// and then a timeout: the client sends the records again, encoding
	// them anew from their values.
	var produces atomic.Int32
	held := make(chan int, 1)
	cluster.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if produces.Add(1) > 1 {
			return nil, nil, false
		}
		preq := req.(*kmsg.ProduceRequest)
		held <- produceRequestRecords(preq)
		cluster.SleepControl(func() { <-release })
		return timedOut(preq), nil, true
	})

	first := make(service.MessageBatch, n)
	want := make([]string, n)
	for i := range first {
		id := fmt.Sprintf("first-%02d", i)
		first[i] = idMessage(id)
		want[i] = fmt.Sprintf(`{"id":%q}`, id)
	}
	writeCtx, shutdown := context.WithCancel(context.Background())
	defer shutdown()
	written := make(chan error, 1)
	go func() { written <- o.WriteBatch(writeCtx, first) }()

	select {
	case got := <-held:
		if got != n {
			t.Fatalf("the held produce request carries %d of %d records", got, n)
		}
	case <-time.After(wait):
		t.Fatal("no produce request reached the broker")
	}
	shutdown()
	var writeErr error
	select {
	case writeErr = <-written:
	case <-time.After(wait):
		t.Fatal("WriteBatch did not return after its ctx ended")
	}
	var bErr *service.BatchError
	if !errors.As(writeErr, &bErr) || bErr.IndexedErrors() != n ||
		!strings.Contains(writeErr.Error(), "no broker answer before shutdown") || !errors.Is(writeErr, context.Canceled) {
		t.Fatalf("WriteBatch after shutdown: %v, want all %d records failed for the shutdown", writeErr, n)
	}

	// Encode values of the same length into whatever the pool hands out
	// now, more than it can hold: a buffer released too early is
	// overwritten in place.
	later := make(service.MessageBatch, 8*n)
	for i := range later {
		later[i] = idMessage(fmt.Sprintf("later-%02d", i))
	}
	rb := o.buildRecords(later)
	for i, err := range rb.errs {
		if err != nil {
			t.Fatalf("later message %d: %v", i, err)
		}
	}

	letGo()
	// Lost records (a value released to the pool is cleared) fail here.
	got := consumeWithFranz(t, addr, topic, n)
	if len(got) != n {
		t.Errorf("read %d records back, want %d", len(got), n)
	}
	for _, r := range got {
		if r.Offset < 0 || r.Offset >= n {
			t.Errorf("unexpected record at offset %d: %q", r.Offset, r.Value)
			continue
		}
		if string(r.Value) != want[r.Offset] {
			t.Errorf("record %d reached the broker as %q, want %q", r.Offset, r.Value, want[r.Offset])
		}
	}
}

func idMessage(id string) *service.Message {
	msg := service.NewMessage(nil)
	msg.SetStructured(map[string]any{"id": id})
	return msg
}

// produceRequestRecords counts the records of a produce request.
func produceRequestRecords(req *kmsg.ProduceRequest) int {
	var n int
	for _, topic := range req.Topics {
		for _, p := range topic.Partitions {
			var batch kmsg.RecordBatch
			if err := batch.ReadFrom(p.Records); err == nil {
				n += int(batch.NumRecords)
			}
		}
	}
	return n
}

// timedOut answers a produce request with REQUEST_TIMED_OUT for every
// partition: the broker may or may not have the records, so an idempotent
// client retries them and never fails them.
func timedOut(req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.RequestTimedOut.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
