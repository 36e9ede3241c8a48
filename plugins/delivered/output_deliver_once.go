// Package delivered provides the deliver_once output: duplicate suppression
// for sinks that are not idempotent, which never blocks the retry of a
// delivery whose write failed.
package delivered

import (
	"context"
	"errors"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	fieldCache  = "cache"
	fieldKey    = "key"
	fieldOutput = "output"
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Utility").
		Summary("Writes messages to a child output unless a cache says their key was already delivered, and records each key only after the child acknowledged its write. For sinks that are not idempotent (a Kafka topic, an NDJSON archive), a provider's retry of an event already written is acknowledged without writing it again.").
		Description(`
A message whose key is in the cache is acknowledged at once without being written. The others are written to the
child output; the keys of those the child acknowledged are then set in the cache. A write that fails is returned
as an error (the webhook answers 503) and marks nothing, so the provider's retry goes through. This is what the
engine's `+"`dedupe`"+` processor cannot do: it marks a key before the write, so a retry of a failed write would be
dropped and the event lost.

The window is the cache's: a `+"`memory`"+` cache with `+"`default_ttl: 24h`"+` suppresses duplicates arriving within a day of
the first delivery, for one process; a `+"`file`"+` cache survives restarts on one host; a shared cache (Redis, in a
Redpanda Connect build) covers several hookpipe instances. Two copies of one event arriving at the same moment can
both be written, and a failure to set the cache after a successful write is logged, not returned (the event is
written; only a later duplicate may slip through): this narrows at-least-once towards exactly-once, it does not
replace an idempotent sink. A cache that cannot be read lets the message through (a possible duplicate, never a
loss).`).
		Fields(
			service.NewStringField(fieldCache).Description("The cache resource holding delivered keys."),
			service.NewInterpolatedStringField(fieldKey).Description("The key of a message. Messages with an empty key are always written.").Default(`${! @event_id }`),
			service.NewOutputField(fieldOutput).Description("The output to write to."),
			service.NewOutputMaxInFlightField(),
		).
		Example("Kafka with duplicate suppression", "Retries within 24 hours of the first delivery are acknowledged without a second record.", `
cache_resources:
  - label: delivered
    memory:
      default_ttl: 24h

output:
  deliver_once:
    cache: delivered
    key: '${! @event_id }'
    output:
      kafka_franz:
        seed_brokers: [ localhost:9092 ]
        topic: 'webhooks.${! json("type") }'
`)
}

func init() {
	err := service.RegisterBatchOutput("deliver_once", outputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		maxInFlight, err := conf.FieldMaxInFlight()
		if err != nil {
			return nil, service.BatchPolicy{}, 0, err
		}
		o, err := newDeliverOnce(conf, mgr)
		return o, service.BatchPolicy{}, maxInFlight, err
	})
	if err != nil {
		panic(err)
	}
}

type deliverOnce struct {
	cache   string
	key     *service.InterpolatedString
	child   *service.OwnedOutput
	mgr     *service.Resources
	log     *service.Logger
	skipped *service.MetricCounter
}

func newDeliverOnce(conf *service.ParsedConfig, mgr *service.Resources) (*deliverOnce, error) {
	d := &deliverOnce{mgr: mgr, log: mgr.Logger(), skipped: mgr.Metrics().NewCounter("webhook_duplicates_skipped_total")}
	var err error
	if d.cache, err = conf.FieldString(fieldCache); err != nil {
		return nil, err
	}
	if !mgr.HasCache(d.cache) {
		return nil, errors.New("cache resource " + d.cache + " is not defined")
	}
	if d.key, err = conf.FieldInterpolatedString(fieldKey); err != nil {
		return nil, err
	}
	if d.child, err = conf.FieldOutput(fieldOutput); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *deliverOnce) Connect(context.Context) error { return d.child.Prime() }

// WriteBatch writes the messages not yet delivered and records the ones the
// child acknowledged.
func (d *deliverOnce) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	keys := make([]string, len(batch))
	var pending service.MessageBatch
	var pendingIdx []int
	for i, msg := range batch {
		k, err := d.key.TryString(msg)
		if err == nil && k != "" && k != "null" {
			keys[i] = k
			if d.delivered(ctx, k) {
				d.skipped.Incr(1)
				continue
			}
		}
		pending = append(pending, msg)
		pendingIdx = append(pendingIdx, i)
	}
	if len(pending) == 0 {
		return nil
	}
	err := d.child.WriteBatch(ctx, pending)
	failed := make([]error, len(pending))
	if err != nil {
		var berr *service.BatchError
		if !errors.As(err, &berr) {
			return err
		}
		berr.WalkMessagesIndexedBy(pending.Index(), func(i int, _ *service.Message, merr error) bool {
			if i >= 0 && i < len(failed) {
				failed[i] = merr
			}
			return true
		})
	}
	// Record what was written, then report what was not, by the caller's indexes.
	var out *service.BatchError
	for j, i := range pendingIdx {
		if failed[j] != nil {
			if out == nil {
				out = service.NewBatchError(batch, err)
			}
			out.Failed(i, failed[j])
			continue
		}
		if keys[i] != "" {
			d.record(ctx, keys[i])
		}
	}
	if out != nil {
		return out
	}
	return nil
}

func (d *deliverOnce) delivered(ctx context.Context, key string) bool {
	var getErr error
	err := d.mgr.AccessCache(ctx, d.cache, func(c service.Cache) {
		_, getErr = c.Get(ctx, key)
	})
	if err == nil && getErr != nil && !errors.Is(getErr, service.ErrKeyNotFound) {
		err = getErr
	}
	if err != nil {
		d.log.Errorf("deliver_once: reading cache %s failed, writing the message anyway: %v", d.cache, err)
		return false
	}
	return getErr == nil
}

func (d *deliverOnce) record(ctx context.Context, key string) {
	var setErr error
	err := d.mgr.AccessCache(ctx, d.cache, func(c service.Cache) {
		setErr = c.Set(ctx, key, []byte{1}, nil)
	})
	if err == nil {
		err = setErr
	}
	if err != nil {
		d.log.Errorf("deliver_once: recording a delivered key in cache %s failed: %v", d.cache, err)
	}
}

func (d *deliverOnce) Close(ctx context.Context) error { return d.child.Close(ctx) }
