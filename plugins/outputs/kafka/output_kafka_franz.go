package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/hookpipe/hookpipe/plugins/health"
	"github.com/hookpipe/hookpipe/plugins/jsonwrite"
)

// Field names. Every one but cloudevents_headers is also a field of Redpanda
// Connect's kafka_franz output, with the same default and meaning.
const (
	fieldSeedBrokers        = "seed_brokers"
	fieldClientID           = "client_id"
	fieldTLS                = "tls"
	fieldSASL               = "sasl"
	fieldSASLMechanism      = "mechanism"
	fieldSASLUsername       = "username"
	fieldSASLPassword       = "password"
	fieldMetadataMaxAge     = "metadata_max_age"
	fieldTopic              = "topic"
	fieldKey                = "key"
	fieldPartition          = "partition"
	fieldMetadata           = "metadata"
	fieldTimestampMs        = "timestamp_ms"
	fieldMaxInFlight        = "max_in_flight"
	fieldBatching           = "batching"
	fieldRackID             = "rack_id"
	fieldPartitioner        = "partitioner"
	fieldIdempotentWrite    = "idempotent_write"
	fieldAcks               = "acks"
	fieldCompression        = "compression"
	fieldAutoTopicCreation  = "allow_auto_topic_creation"
	fieldTimeout            = "timeout"
	fieldMaxMessageBytes    = "max_message_bytes"
	fieldMaxBufferedRecords = "max_buffered_records"
	fieldRecordRetries      = "record_retries"
	fieldDeliveryTimeout    = "record_delivery_timeout"
	fieldCloudEventsHeaders = "cloudevents_headers"
)

// Example configs of the spec, kept here so tests can build them.
const (
	exampleRouteByType = `
output:
  kafka_franz:
    seed_brokers: [ "localhost:9092" ]
    topic: 'hookpipe.${! json("type").re_replace_all("[^a-zA-Z0-9._-]", "_") }'
    key: '${! json("subject") }'
    cloudevents_headers: true
    metadata:
      include_prefixes: [ "hookpipe_" ]
    batching:
      count: 100
      period: 20ms
`

	exampleManagedCluster = `
output:
  kafka_franz:
    seed_brokers: [ "kafka-1.example.com:9093,kafka-2.example.com:9093" ]
    topic: hookpipe.events
    key: '${! json("subject") }'
    tls:
      enabled: true
    sasl:
      - mechanism: SCRAM-SHA-512
        username: hookpipe
        password: "${KAFKA_PASSWORD}"
    compression: zstd
    idempotent_write: false
    record_delivery_timeout: 20s
`
)

func franzOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Writes messages to Kafka topics with the franz-go client; a compatible subset of Redpanda Connect's `kafka_franz` output.").
		Description(`
Each message becomes one Kafka record: the message bytes are the record value, unchanged, and `+"`topic`"+`, `+"`key`"+`
and `+"`partition`"+` are resolved per message, so one output can spread a stream over many topics.

== Delivery

A batch is acknowledged only once the brokers have acknowledged every record in it (with `+"`acks: all`"+`, the
default, that means every in-sync replica). When some records of a batch fail, only those messages are nacked and the
rest count as written, so an input that tracks messages one by one (hookpipe's webhook input answers each HTTP request
from its own message's fate) retries exactly what was lost. A message whose topic, key, partition or timestamp cannot
be resolved fails on its own without holding back the rest of its batch.

While the brokers are unreachable the client keeps retrying, and the write stays unacknowledged meanwhile: nothing is
acknowledged that a broker has not confirmed. How long it keeps trying depends on `+"`idempotent_write`"+`:

- With `+"`idempotent_write: true`"+` (the default) a record that may already have reached a broker is never given up,
  because a second copy could then be written; `+"`record_retries`"+` and `+"`record_delivery_timeout`"+` only fail
  records that certainly were not sent. In an outage the write is therefore held until a broker answers, and then
  completes without duplicates.
- With `+"`idempotent_write: false`"+` and a `+"`record_delivery_timeout`"+`, an outage turns into nacks after about
  that time, so an upstream producer (for example a webhook provider that retries on a 5xx answer) brings the event
  back later. A record that was in flight when it timed out may still have been written, so expect occasional
  duplicates (hookpipe's events carry a stable `+"`id`"+` to deduplicate on).

When the pipeline shuts down, writes still waiting for a broker are nacked rather than holding the shutdown.

== Readiness

The output adds a readiness probe, run by hookpipe's webhook input for its `+"`/readyz`"+`: it fails until the output
has connected, and while no broker answers a metadata request. Every broker the client knows is asked at once, and
so are the seed brokers, one after the other, when the known ones fail; one answer is enough. A single broker that
hangs does not fail readiness while the rest of the cluster works, and a cluster that moved behind the same seed
address passes again as soon as it answers. A load balancer then stops sending during an outage instead of finding
out from held deliveries.

== Compatibility

Field names, defaults and meanings follow Redpanda Connect's `+"`kafka_franz`"+` output, so a pipeline written for
hookpipe runs unchanged on a Redpanda Connect build that includes hookpipe's webhook plugins. hookpipe implements a
subset of its fields. `+"`cloudevents_headers`"+` is hookpipe's own addition: Redpanda Connect does not know it, so a
pipeline that must also run there leaves it unset.

== CloudEvents headers (hookpipe extension)

With `+"`cloudevents_headers: true`"+`, a message that is a CloudEvents 1.0 event in structured JSON mode (a JSON object
whose `+"`specversion`"+` is `+"`\"1.0\"`"+` and whose `+"`id`"+`, `+"`source`"+` and `+"`type`"+` are non-empty
strings) also gets the attribute headers of the CloudEvents Kafka protocol binding: `+"`ce_specversion`"+`,
`+"`ce_id`"+`, `+"`ce_source`"+`, `+"`ce_type`"+`, `+"`ce_subject`"+`, `+"`ce_time`"+`, `+"`ce_dataschema`"+` and one
`+"`ce_<name>`"+` header per extension attribute, plus `+"`content-type: application/cloudevents+json`"+`.

The record stays in structured mode: its value is the whole envelope, byte for byte, and CloudEvents SDKs read it as
such (they recognise structured mode by the `+"`content-type`"+` header). The `+"`ce_*`"+` headers are there so that
consumers, stream processors and broker-side tools can route or filter on the event's attributes without parsing the
value. String attributes are written as they are; numbers and booleans as their JSON text; any other JSON value as
compact JSON. `+"`data`"+`, `+"`data_base64`"+` and `+"`datacontenttype`"+` are not copied. Messages that are not such
an envelope are written without these headers. When this option is on, metadata headers named `+"`content-type`"+` or
starting with `+"`ce_`"+` are dropped, so the envelope is the only source of those headers.
`+service.OutputPerformanceDocs(true, true)).
		Fields(
			service.NewStringListField(fieldSeedBrokers).
				Description("Addresses of the brokers to bootstrap from. An entry may hold several addresses separated by commas.").
				Example([]string{"localhost:9092"}).
				Example([]string{"kafka-1:9092", "kafka-2:9092"}).
				Example([]string{"kafka-1:9092,kafka-2:9092"}),
			service.NewInterpolatedStringField(fieldTopic).
				Description("The topic each message is written to.").
				Example("hookpipe.events").
				Example(`hookpipe.${! json("type") }`),
			service.NewInterpolatedStringField(fieldKey).
				Description("The record key of each message. Records with the same key land on the same partition, which keeps their order. When unset, records have no key.").
				Example(`${! json("subject") }`).
				Optional(),
			service.NewStringAnnotatedEnumField(fieldPartitioner, map[string]string{
				"murmur2_hash": "Hashes the key with murmur2 like the Java client, so keyed records land where other Kafka producers would put them; records without a key stick to one partition per batch.",
				"round_robin":  "Spreads records over all partitions in turn, one record at a time.",
				"least_backup": "Sends each batch to the partition with the fewest records waiting in the client's buffer.",
				"manual":       "Sends each record to the partition given by the `partition` field.",
			}).
				Description("How records are spread over a topic's partitions. When unset, `murmur2_hash` is used.").
				Advanced().
				Optional(),
			service.NewInterpolatedStringField(fieldPartition).
				Description("The partition of each message, an integer. Only used, and then required, when `partitioner` is `manual`.").
				Example(`${! meta("partition") }`).
				Advanced().
				Optional(),
			service.NewMetadataFilterField(fieldMetadata).
				Description("Which metadata keys of a message are written as record headers. No metadata is written when unset.").
				Optional(),
			service.NewInterpolatedStringField(fieldTimestampMs).
				Description("The record timestamp in milliseconds since the Unix epoch. When unset, the time of the write is used.").
				Example(`${! timestamp_unix_milli() }`).
				Example(`${! json("time").ts_unix_milli() }`).
				Advanced().
				Optional(),
			service.NewBoolField(fieldCloudEventsHeaders).
				Description("hookpipe extension, not a field of Redpanda Connect. Adds the CloudEvents Kafka binding headers (`ce_id`, `ce_type`, ... and `content-type: application/cloudevents+json`) to messages that are CloudEvents 1.0 structured JSON envelopes; the value is written unchanged. See the description above.").
				Default(false),
			service.NewStringField(fieldClientID).
				Description("The client ID the brokers see for this connection (used in broker logs and quotas).").
				Default("redpanda-connect").
				Advanced(),
			service.NewTLSToggledField(fieldTLS),
			service.NewObjectListField(fieldSASL,
				service.NewStringAnnotatedEnumField(fieldSASLMechanism, map[string]string{
					"none":          "No SASL authentication (the entry is ignored).",
					"PLAIN":         "Username and password sent as they are; use it only over TLS.",
					"SCRAM-SHA-256": "Salted challenge-response authentication (RFC 5802) with SHA-256.",
					"SCRAM-SHA-512": "Salted challenge-response authentication (RFC 5802) with SHA-512.",
				}).Description("The SASL mechanism."),
				service.NewStringField(fieldSASLUsername).
					Description("The username for PLAIN or SCRAM authentication.").
					Default(""),
				service.NewStringField(fieldSASLPassword).
					Description("The password for PLAIN or SCRAM authentication.").
					Default("").
					Secret(),
			).
				Description("SASL mechanisms to authenticate with, in order of preference: the first one the broker supports is used.").
				Example([]any{map[string]any{"mechanism": "SCRAM-SHA-512", "username": "hookpipe", "password": "${KAFKA_PASSWORD}"}}).
				Advanced().
				Optional(),
			service.NewDurationField(fieldMetadataMaxAge).
				Description("How old the client's view of the cluster (topics, partitions, leaders) may get before it is refreshed.").
				Default("1m").
				Advanced(),
			service.NewIntField(fieldMaxInFlight).
				Description("The maximum number of batches written at the same time.").
				Default(10),
			service.NewBatchPolicyField(fieldBatching),
			service.NewBoolField(fieldIdempotentWrite).
				Description("Use the idempotent producer: the brokers discard the duplicates that client retries would otherwise create, and keep each partition in order. Needs `acks: all` and, on clusters with ACLs, the IDEMPOTENT_WRITE permission on the cluster.").
				Default(true).
				Advanced(),
			service.NewStringAnnotatedEnumField(fieldAcks, map[string]string{
				"all":    "Wait until every in-sync replica has the record (acks=-1). Required by `idempotent_write`.",
				"leader": "Wait until the partition leader has the record (acks=1); a leader failure can lose it.",
				"none":   "Do not wait for the broker at all (acks=0); records can be lost silently.",
			}).
				Description("Which broker acknowledgement counts as written.").
				Default("all").
				Advanced(),
			service.NewStringEnumField(fieldCompression, "none", "gzip", "snappy", "lz4", "zstd").
				Description("The compression of record batches. When unset, snappy is used if the broker supports it, else none.").
				Advanced().
				Optional(),
			service.NewBoolField(fieldAutoTopicCreation).
				Description("Let the brokers create a topic that does not exist yet when it is first written to (if the brokers allow it).").
				Default(true).
				Advanced(),
			service.NewDurationField(fieldTimeout).
				Description("How long a broker may take to answer a produce request before the client retries it.").
				Default("10s").
				Advanced(),
			service.NewStringField(fieldMaxMessageBytes).
				Description("The largest record batch sent to a broker, as a byte size such as `1MiB` or `1000000`. A record that alone is larger fails with MESSAGE_TOO_LARGE. Keep it at or below the broker's `message.max.bytes`.").
				Default("1MiB").
				Example("100MB").
				Example("50mib").
				Advanced(),
			service.NewIntField(fieldMaxBufferedRecords).
				Description("The most records the client holds in memory waiting to be sent; a write waits while the buffer is full.").
				Default(10000).
				Advanced(),
			service.NewIntField(fieldRecordRetries).
				Description("How many times a record is retried before it fails; 0 retries without limit. When a record fails, the records buffered behind it for the same partition fail too, so nothing is written out of order. With `idempotent_write` the limit applies only where retrying cannot create duplicates.").
				Default(0).
				Advanced(),
			service.NewDurationField(fieldDeliveryTimeout).
				Description("How long a record may wait in the client (including retries) before it fails; `0s` waits without limit. Like `record_retries`, a failure takes the records buffered behind it for the same partition with it. With `idempotent_write` it applies only to records that certainly were not sent, so during an outage writes are held rather than failed; see Delivery above.").
				Default("0s").
				Example("30s").
				Advanced(),
			service.NewStringField(fieldRackID).
				Description("Accepted for compatibility and ignored; it has no effect on a producer.").
				Deprecated().
				Optional(),
		).
		LintRule(`root = match {
  this.partitioner.or("") == "manual" && this.partition.or("") == "" => "partition must be set when partitioner is manual"
  this.partitioner.or("") != "manual" && this.partition.or("") != "" => "partition is only used when partitioner is manual"
  this.idempotent_write.or(true) && this.acks.or("all") != "all" => "idempotent_write needs acks: all"
}`).
		Example(
			"Route webhook events to a topic per event type",
			`Writes hookpipe's canonical CloudEvents envelopes to one topic per event type, keyed by the event's subject so `+
				`the events of one entity (a petition, a person, a group) stay in order on one partition. Characters that `+
				`Kafka does not allow in topic names are replaced. The CloudEvents attributes also go into `+"`ce_*`"+` headers, `+
				`and hookpipe's own metadata into further headers.`,
			exampleRouteByType,
		).
		Example(
			"Managed cluster with TLS and SCRAM",
			`Connects to a cluster that requires TLS and SCRAM-SHA-512, keeping the password out of the file with an `+
				`environment variable. Idempotent writes are turned off so that the delivery timeout applies: during an `+
				`outage writes fail after 20 seconds and the webhook provider retries them later, at the cost of `+
				`occasional duplicates.`,
			exampleManagedCluster,
		)
}

func init() {
	service.MustRegisterBatchOutput("kafka_franz", franzOutputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (out service.BatchOutput, policy service.BatchPolicy, maxInFlight int, err error) {
			if maxInFlight, err = conf.FieldInt(fieldMaxInFlight); err != nil {
				return
			}
			if policy, err = conf.FieldBatchPolicy(fieldBatching); err != nil {
				return
			}
			out, err = newStreamFranzOutput(conf, mgr)
			return
		})
}

// clientConfig is the parsed connection and producer part of the config.
type clientConfig struct {
	seedBrokers        []string
	clientID           string
	tls                *tls.Config // nil when TLS is off
	sasl               []sasl.Mechanism
	metadataMaxAge     time.Duration
	partitioner        kgo.Partitioner
	idempotent         bool
	acks               kgo.Acks
	compression        []kgo.CompressionCodec // empty: the client's default
	autoTopicCreation  bool
	timeout            time.Duration
	maxMessageBytes    int32
	maxBufferedRecords int
	recordRetries      int
	deliveryTimeout    time.Duration
}

func clientConfigFromParsed(conf *service.ParsedConfig) (c clientConfig, err error) {
	brokers, err := conf.FieldStringList(fieldSeedBrokers)
	if err != nil {
		return c, err
	}
	for _, entry := range brokers {
		for _, b := range strings.Split(entry, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.seedBrokers = append(c.seedBrokers, b)
			}
		}
	}
	if len(c.seedBrokers) == 0 {
		return c, errors.New("seed_brokers: at least one broker address is required")
	}

	if c.clientID, err = conf.FieldString(fieldClientID); err != nil {
		return c, err
	}
	tlsConf, tlsOn, err := conf.FieldTLSToggled(fieldTLS)
	if err != nil {
		return c, err
	}
	if tlsOn {
		c.tls = tlsConf
	}
	if c.sasl, err = saslFromParsed(conf); err != nil {
		return c, err
	}
	if c.metadataMaxAge, err = conf.FieldDuration(fieldMetadataMaxAge); err != nil {
		return c, err
	}

	partitioner := "murmur2_hash"
	if conf.Contains(fieldPartitioner) {
		if partitioner, err = conf.FieldString(fieldPartitioner); err != nil {
			return c, err
		}
	}
	switch partitioner {
	case "murmur2_hash":
		// nil hasher: the Kafka-compatible murmur2 hash.
		c.partitioner = kgo.StickyKeyPartitioner(nil)
	case "round_robin":
		c.partitioner = kgo.RoundRobinPartitioner()
	case "least_backup":
		c.partitioner = kgo.LeastBackupPartitioner()
	case "manual":
		c.partitioner = kgo.ManualPartitioner()
	default:
		return c, fmt.Errorf("partitioner: unknown value %q", partitioner)
	}

	if c.idempotent, err = conf.FieldBool(fieldIdempotentWrite); err != nil {
		return c, err
	}
	acks, err := conf.FieldString(fieldAcks)
	if err != nil {
		return c, err
	}
	switch acks {
	case "all":
		c.acks = kgo.AllISRAcks()
	case "leader":
		c.acks = kgo.LeaderAck()
	case "none":
		c.acks = kgo.NoAck()
	default:
		return c, fmt.Errorf("acks: unknown value %q", acks)
	}
	// The client would refuse this combination only when it starts, which
	// the engine would retry forever; say it now instead.
	if c.idempotent && acks != "all" {
		return c, fmt.Errorf("idempotent_write needs acks: all (got %q); set idempotent_write: false to use other acks", acks)
	}

	if conf.Contains(fieldCompression) {
		name, err := conf.FieldString(fieldCompression)
		if err != nil {
			return c, err
		}
		codec, err := compressionCodec(name)
		if err != nil {
			return c, err
		}
		c.compression = []kgo.CompressionCodec{codec}
	}

	if c.autoTopicCreation, err = conf.FieldBool(fieldAutoTopicCreation); err != nil {
		return c, err
	}
	if c.timeout, err = conf.FieldDuration(fieldTimeout); err != nil {
		return c, err
	}
	sizeStr, err := conf.FieldString(fieldMaxMessageBytes)
	if err != nil {
		return c, err
	}
	size, err := humanize.ParseBytes(sizeStr)
	if err != nil {
		return c, fmt.Errorf("max_message_bytes: %w", err)
	}
	if size == 0 || size > math.MaxInt32 {
		return c, fmt.Errorf("max_message_bytes: %d is out of range (1 to %d)", size, math.MaxInt32)
	}
	c.maxMessageBytes = int32(size)
	if c.maxBufferedRecords, err = conf.FieldInt(fieldMaxBufferedRecords); err != nil {
		return c, err
	}
	if c.maxBufferedRecords < 1 {
		return c, fmt.Errorf("max_buffered_records: must be at least 1, got %d", c.maxBufferedRecords)
	}
	if c.recordRetries, err = conf.FieldInt(fieldRecordRetries); err != nil {
		return c, err
	}
	if c.recordRetries < 0 {
		return c, fmt.Errorf("record_retries: must not be negative, got %d", c.recordRetries)
	}
	if c.deliveryTimeout, err = conf.FieldDuration(fieldDeliveryTimeout); err != nil {
		return c, err
	}
	return c, nil
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression: unknown codec %q", name)
}

// saslFromParsed builds the SASL mechanisms. Errors never include passwords.
func saslFromParsed(conf *service.ParsedConfig) ([]sasl.Mechanism, error) {
	if !conf.Contains(fieldSASL) {
		return nil, nil
	}
	entries, err := conf.FieldObjectList(fieldSASL)
	if err != nil {
		return nil, err
	}
	var mechs []sasl.Mechanism
	for i, entry := range entries {
		mech, err := entry.FieldString(fieldSASLMechanism)
		if err != nil {
			return nil, err
		}
		user, err := entry.FieldString(fieldSASLUsername)
		if err != nil {
			return nil, err
		}
		pass, err := entry.FieldString(fieldSASLPassword)
		if err != nil {
			return nil, err
		}
		switch mech {
		case "", "none":
			continue
		case "PLAIN":
			mechs = append(mechs, plain.Auth{User: user, Pass: pass}.AsMechanism())
		case "SCRAM-SHA-256":
			mechs = append(mechs, scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())
		case "SCRAM-SHA-512":
			mechs = append(mechs, scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
		default:
			return nil, fmt.Errorf("sasl[%d].mechanism: unsupported value %q (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", i, mech)
		}
		if user == "" {
			return nil, fmt.Errorf("sasl[%d]: %s needs a username", i, mech)
		}
	}
	return mechs, nil
}

// kgoOpts turns the config into franz-go client options.
func (c clientConfig) kgoOpts(log *service.Logger) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.seedBrokers...),
		kgo.ClientID(c.clientID),
		kgo.MetadataMaxAge(c.metadataMaxAge),
		kgo.RecordPartitioner(c.partitioner),
		kgo.RequiredAcks(c.acks),
		kgo.ProduceRequestTimeout(c.timeout),
		kgo.ProducerBatchMaxBytes(c.maxMessageBytes),
		kgo.MaxBufferedRecords(c.maxBufferedRecords),
		// A batch is produced whole and then awaited, and a webhook reply
		// waits for it: lingering for more records would only add latency.
		kgo.ProducerLinger(0),
		kgo.WithLogger(kgoLogger{log}),
	}
	if c.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(c.tls))
	}
	if len(c.sasl) > 0 {
		opts = append(opts, kgo.SASL(c.sasl...))
	}
	if !c.idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if len(c.compression) > 0 {
		opts = append(opts, kgo.ProducerBatchCompression(c.compression...))
	}
	if c.autoTopicCreation {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	if c.recordRetries > 0 {
		opts = append(opts, kgo.RecordRetries(c.recordRetries))
	}
	if c.deliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(c.deliveryTimeout))
	}
	return opts
}

// kgoLogger forwards the client's log lines to the engine's logger, one
// level quieter: the client's info lines are routine connection chatter.
type kgoLogger struct{ log *service.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if l.log == nil {
		return
	}
	log := l.log.With(keyvals...)
	switch level {
	case kgo.LogLevelError:
		log.Error(msg)
	case kgo.LogLevelWarn:
		log.Warn(msg)
	case kgo.LogLevelInfo:
		log.Debug(msg)
	default:
		log.Trace(msg)
	}
}

//------------------------------------------------------------------------------

// franzOutput writes each batch with one shared franz-go client.
type franzOutput struct {
	log  *service.Logger
	opts []kgo.Opt

	topic       *service.InterpolatedString
	key         *service.InterpolatedString // nil: no key
	partition   *service.InterpolatedString // nil unless manual
	timestampMs *service.InterpolatedString // nil: time of the write
	metaFilter  *service.MetadataFilter     // nil: no metadata headers
	ceHeaders   bool

	mu     sync.RWMutex
	client *kgo.Client
	closed bool // Close ran: a Connect finishing later keeps no client

	removeProbe func() // nil when no stream registered the probe (tests)
}

func newFranzOutput(conf *service.ParsedConfig, log *service.Logger) (*franzOutput, error) {
	cc, err := clientConfigFromParsed(conf)
	if err != nil {
		return nil, err
	}
	o := &franzOutput{log: log, opts: cc.kgoOpts(log)}

	if o.topic, err = conf.FieldInterpolatedString(fieldTopic); err != nil {
		return nil, err
	}
	if conf.Contains(fieldKey) {
		if o.key, err = conf.FieldInterpolatedString(fieldKey); err != nil {
			return nil, err
		}
	}
	manual := false
	if conf.Contains(fieldPartitioner) {
		p, _ := conf.FieldString(fieldPartitioner)
		manual = p == "manual"
	}
	if raw, _ := conf.FieldString(fieldPartition); raw != "" {
		if !manual {
			return nil, errors.New("partition is only used when partitioner is manual")
		}
		if o.partition, err = conf.FieldInterpolatedString(fieldPartition); err != nil {
			return nil, err
		}
	} else if manual {
		return nil, errors.New("partition must be set when partitioner is manual")
	}
	if conf.Contains(fieldTimestampMs) {
		if o.timestampMs, err = conf.FieldInterpolatedString(fieldTimestampMs); err != nil {
			return nil, err
		}
	}
	if conf.Contains(fieldMetadata) {
		if o.metaFilter, err = conf.FieldMetadataFilter(fieldMetadata); err != nil {
			return nil, err
		}
		if o.metaFilter.IsEmpty() {
			o.metaFilter = nil
		}
	}
	if o.ceHeaders, err = conf.FieldBool(fieldCloudEventsHeaders); err != nil {
		return nil, err
	}
	return o, nil
}

// newStreamFranzOutput is newFranzOutput for an output of a stream: it also
// registers the output's readiness probe with the stream's health registry.
func newStreamFranzOutput(conf *service.ParsedConfig, mgr *service.Resources) (*franzOutput, error) {
	o, err := newFranzOutput(conf, mgr.Logger())
	if err != nil {
		return nil, err
	}
	o.removeProbe = health.For(mgr).Add(health.ComponentName("kafka_franz", mgr), o.reachable)
	return o, nil
}

// newClient starts a client and checks that a seed broker answers.
func (o *franzOutput) newClient(ctx context.Context) (*kgo.Client, error) {
	cl, err := kgo.NewClient(o.opts...)
	if err != nil {
		return nil, err
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		// A broker that is down comes back by itself, so the engine's
		// usual quick reconnects are right; a broker that answered with
		// a final refusal (a rejected login, say) needs a person, so
		// don't hammer it.
		var kErr *kerr.Error
		if errors.As(err, &kErr) && !kErr.Retriable {
			return nil, service.NewErrBackOff(fmt.Errorf("kafka: broker refused the connection: %w", err), 30*time.Second)
		}
		return nil, fmt.Errorf("kafka: no broker answered: %w", err)
	}
	return cl, nil
}

// Connect creates the client once the brokers answer. The brokers are
// waited for outside the lock, so the readiness probe and writes never wait
// behind a connection attempt.
func (o *franzOutput) Connect(ctx context.Context) error {
	o.mu.RLock()
	connected := o.client != nil
	o.mu.RUnlock()
	if connected {
		return nil
	}
	cl, err := o.newClient(ctx)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closed:
		cl.Close()
		return service.ErrNotConnected
	case o.client != nil:
		cl.Close() // another Connect got there first
	default:
		o.client = cl
	}
	return nil
}

// reachable is the readiness probe: the output has connected and a broker
// answers now. A client that is retrying through an outage would otherwise
// look the same as one that is idle.
//
// The brokers are asked at once and one answer is enough: asked one after
// the other, a single broker that hangs would use up the probe's time and
// fail readiness on every instance while the rest of the cluster works.
func (o *franzOutput) reachable(ctx context.Context) error {
	o.mu.RLock()
	cl := o.client
	o.mu.RUnlock()
	if cl == nil {
		return service.ErrNotConnected
	}
	// Each known broker is asked directly, and beside them the client's own
	// Ping, which goes on to the seed brokers when the known ones fail and
	// refreshes the client's list of brokers from the answer: a cluster that
	// moved (new broker addresses behind the same seed address) passes at
	// once.
	brokers := cl.DiscoveredBrokers()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan error, len(brokers)+1) // never blocks a late answer
	go func() { answers <- cl.Ping(ctx) }()
	for _, b := range brokers {
		go func() {
			// A metadata request for no topics: what the client's own
			// Ping sends.
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{}
			_, err := b.Request(ctx, req)
			answers <- err
		}()
	}
	var first error
	for range len(brokers) + 1 {
		err := <-answers
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("kafka: no broker answered: %w", first)
}

// ConnectionTest reports whether a seed broker answers.
func (o *franzOutput) ConnectionTest(ctx context.Context) service.ConnectionTestResults {
	cl, err := o.newClient(ctx)
	if err != nil {
		return service.ConnectionTestFailed(err).AsList()
	}
	cl.Close()
	return service.ConnectionTestSucceeded().AsList()
}

// WriteBatch produces every record of the batch and returns once the brokers
// have answered for all of them. Records that failed, or could not be built,
// are reported per message in a service.BatchError.
//
// When ctx ends first (the pipeline is shutting down) the records still
// unanswered are reported as failed. The client may yet deliver them, so a
// redelivery can duplicate them, but nothing nacked is ever lost.
func (o *franzOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	if len(batch) == 0 {
		return nil
	}
	o.mu.RLock()
	cl := o.client
	o.mu.RUnlock()
	if cl == nil {
		return service.ErrNotConnected
	}

	rb := o.buildRecords(batch)
	records, errs := rb.records, rb.errs
	type answer struct {
		i   int
		err error
	}
	// Buffered for every record, so promises that fire after an early
	// return never block the client.
	answers := make(chan answer, len(records))
	waiting := make([]bool, len(records))
	var unanswered int
	for i := range records {
		if errs[i] != nil {
			continue
		}
		waiting[i] = true
		unanswered++
		cl.Produce(ctx, &records[i], func(_ *kgo.Record, err error) {
			answers <- answer{i, err}
		})
	}
	for unanswered > 0 {
		select {
		case a := <-answers:
			errs[a.i], waiting[a.i] = a.err, false
			unanswered--
		case <-ctx.Done():
			for i, w := range waiting {
				if w {
					errs[i] = fmt.Errorf("kafka: no broker answer before shutdown: %w", ctx.Err())
				}
			}
			unanswered = 0
		}
	}
	// A record whose promise fired is the client's no longer; one still
	// waiting after shutdown keeps its buffer.
	for i, w := range waiting {
		if !w {
			rb.release(i)
		}
	}
	return batchResult(batch, errs)
}

// valueBuffers hold encoded record values from one batch to the next: the
// client copies a record into its produce request, and once the record's
// promise has fired its buffer is free, so a record costs no new buffer.
var valueBuffers = sync.Pool{New: func() any { return new([]byte) }}

// recordBatch is the records of one message batch, with the pooled buffers
// holding their encoded values.
type recordBatch struct {
	records []kgo.Record
	errs    []error   // errs[i] is set when message i cannot become a record
	buffers []*[]byte // buffers[i] holds records[i].Value, or is nil
}

// release returns record i's value buffer to the pool. Only for a record the
// client is done with (its promise fired, or it was never produced).
func (rb *recordBatch) release(i int) {
	if buf := rb.buffers[i]; buf != nil {
		rb.buffers[i] = nil
		value := rb.records[i].Value
		rb.records[i].Value = nil
		// A buffer grown by an unusually large message is left to the
		// collector rather than kept for every later record.
		if cap(value) <= maxPooledValue {
			*buf = value[:0]
			valueBuffers.Put(buf)
		}
	}
}

// maxPooledValue is the largest value buffer kept for reuse.
const maxPooledValue = 64 << 10

// batchResult turns per-message errors into the output's verdict.
func batchResult(batch service.MessageBatch, errs []error) error {
	var failed int
	var first error
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed == 0 {
		return nil
	}
	bErr := service.NewBatchError(batch, fmt.Errorf("kafka: %d of %d records not written: %w", failed, len(batch), first))
	for i, err := range errs {
		if err != nil {
			bErr.Failed(i, err)
		}
	}
	return bErr
}

// buildRecords resolves the record of each message, a structured value
// encoded into a pooled buffer (see release). errs[i] is set when the record
// of message i could not be built; its record is then left incomplete.
func (o *franzOutput) buildRecords(batch service.MessageBatch) *recordBatch {
	rb := &recordBatch{
		records: make([]kgo.Record, len(batch)),
		errs:    make([]error, len(batch)),
		buffers: make([]*[]byte, len(batch)),
	}

	// Executors resolve each field from the batch's point of view, so
	// batch-wide interpolation functions work as in other outputs.
	topic := batch.InterpolationExecutor(o.topic)
	var key, partition, timestamp *service.MessageBatchInterpolationExecutor
	if o.key != nil {
		key = batch.InterpolationExecutor(o.key)
	}
	if o.partition != nil {
		partition = batch.InterpolationExecutor(o.partition)
	}
	if o.timestampMs != nil {
		timestamp = batch.InterpolationExecutor(o.timestampMs)
	}

	for i, msg := range batch {
		buf := valueBuffers.Get().(*[]byte)
		value, encoded, err := jsonwrite.AppendContent((*buf)[:0], msg)
		switch {
		case err != nil:
			rb.errs[i] = fmt.Errorf("kafka: message value: %w", err)
		case encoded:
			// The envelope, encoded without reflection (the same bytes as
			// the engine) into a reused buffer.
			rb.records[i].Value, rb.buffers[i] = value, buf
		default:
			rb.records[i].Value = value
		}
		if !encoded {
			valueBuffers.Put(buf)
		}
		if err == nil {
			rb.errs[i] = o.buildRecord(&rb.records[i], i, msg, topic, key, partition, timestamp)
		}
	}
	return rb
}

func (o *franzOutput) buildRecord(
	r *kgo.Record, i int, msg *service.Message,
	topic, key, partition, timestamp *service.MessageBatchInterpolationExecutor,
) error {
	var err error
	if r.Topic, err = topic.TryString(i); err != nil {
		return fmt.Errorf("kafka: topic interpolation: %w", err)
	}
	if r.Topic == "" {
		return errors.New("kafka: topic interpolation gave an empty topic")
	}
	if key != nil {
		if r.Key, err = key.TryBytes(i); err != nil {
			return fmt.Errorf("kafka: key interpolation: %w", err)
		}
	}
	if partition != nil {
		s, err := partition.TryString(i)
		if err != nil {
			return fmt.Errorf("kafka: partition interpolation: %w", err)
		}
		p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || p < 0 {
			return fmt.Errorf("kafka: partition %q is not a partition number", s)
		}
		r.Partition = int32(p)
	}
	if timestamp != nil {
		s, err := timestamp.TryString(i)
		if err != nil {
			return fmt.Errorf("kafka: timestamp_ms interpolation: %w", err)
		}
		ms, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("kafka: timestamp_ms %q is not an integer", s)
		}
		r.Timestamp = time.UnixMilli(ms)
	}
	r.Headers = o.headers(msg, r.Value)
	return nil
}

// headers builds the record headers of a message: the metadata the filter
// lets through, sorted by key so records are reproducible, then the
// CloudEvents binding headers when enabled and the value is an envelope.
func (o *franzOutput) headers(msg *service.Message, value []byte) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	if o.metaFilter != nil {
		_ = o.metaFilter.Walk(msg, func(k, v string) error {
			if o.ceHeaders && isCloudEventsHeader(k) {
				return nil
			}
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
			return nil
		})
		slices.SortFunc(hs, func(a, b kgo.RecordHeader) int { return strings.Compare(a.Key, b.Key) })
	}
	if o.ceHeaders {
		hs = appendMessageCloudEventHeaders(hs, msg, value)
	}
	return hs
}

// Close stops the client; writes still waiting fail.
func (o *franzOutput) Close(ctx context.Context) error {
	if o.removeProbe != nil {
		o.removeProbe()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	if o.client != nil {
		o.client.Close()
		o.client = nil
	}
	return nil
}
