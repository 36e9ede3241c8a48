package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeWithFranz reads n records of topic with a franz-go consumer, from
// the start. The SASL tests read back with it because kcat (librdkafka 2.0)
// insists on the SASL handshake v0, which kfake does not serve.
func consumeWithFranz(t *testing.T, brokers, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var records []*kgo.Record
	for len(records) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(records), n, topic)
		}
		for _, fe := range fetches.Errors() {
			t.Fatalf("consume %s: %v", topic, fe.Err)
		}
		records = append(records, fetches.Records()...)
	}
	return records
}
