package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func parseConf(t testing.TB, yaml string) *service.ParsedConfig {
	t.Helper()
	conf, err := franzOutputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return conf
}

func newOutput(t testing.TB, yaml string) *franzOutput {
	t.Helper()
	o, err := newFranzOutput(parseConf(t, yaml), nil)
	if err != nil {
		t.Fatalf("new output: %v", err)
	}
	return o
}

func TestConfigDefaults(t *testing.T) {
	c, err := clientConfigFromParsed(parseConf(t, `
seed_brokers: [ "127.0.0.1:1,127.0.0.1:2", " 127.0.0.1:3 " ]
topic: t
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(c.seedBrokers, " "), "127.0.0.1:1 127.0.0.1:2 127.0.0.1:3"; got != want {
		t.Errorf("seed brokers %q, want %q", got, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"client_id", c.clientID, "redpanda-connect"},
		{"tls", c.tls == nil, true},
		{"sasl", len(c.sasl), 0},
		{"metadata_max_age", c.metadataMaxAge, time.Minute},
		{"idempotent_write", c.idempotent, true},
		{"acks", c.acks, kgo.AllISRAcks()},
		{"compression", len(c.compression), 0},
		{"allow_auto_topic_creation", c.autoTopicCreation, true},
		{"timeout", c.timeout, 10 * time.Second},
		{"max_message_bytes", c.maxMessageBytes, int32(1 << 20)},
		{"max_buffered_records", c.maxBufferedRecords, 10000},
		{"record_retries", c.recordRetries, 0},
		{"record_delivery_timeout", c.deliveryTimeout, time.Duration(0)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}

	o := newOutput(t, "seed_brokers: [ 127.0.0.1:1 ]\ntopic: t\n")
	if o.key != nil || o.partition != nil || o.timestampMs != nil || o.metaFilter != nil || o.ceHeaders {
		t.Errorf("optional fields set by default: %+v", o)
	}

	// The engine-level defaults shared with Redpanda Connect.
	env := service.NewEnvironment()
	var seen bool
	env.WalkOutputs(func(name string, _ *service.ConfigView) {
		seen = seen || name == "kafka_franz"
	})
	if !seen {
		t.Fatal("kafka_franz is not registered")
	}
	mif, err := parseConf(t, "seed_brokers: [ a:1 ]\ntopic: t\n").FieldInt(fieldMaxInFlight)
	if err != nil || mif != 10 {
		t.Errorf("max_in_flight = %d, %v; want 10", mif, err)
	}
}

func TestConfigExplicit(t *testing.T) {
	c, err := clientConfigFromParsed(parseConf(t, `
seed_brokers: [ 127.0.0.1:9092 ]
topic: t
client_id: hookpipe-test
metadata_max_age: 5s
idempotent_write: false
acks: leader
compression: zstd
allow_auto_topic_creation: false
timeout: 3s
max_message_bytes: 50mib
max_buffered_records: 7
record_retries: 4
record_delivery_timeout: 9s
tls:
  enabled: true
  skip_cert_verify: true
rack_id: ignored
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.clientID != "hookpipe-test" || c.metadataMaxAge != 5*time.Second || c.idempotent ||
		c.acks != kgo.LeaderAck() || c.autoTopicCreation || c.timeout != 3*time.Second ||
		c.maxMessageBytes != 50<<20 || c.maxBufferedRecords != 7 || c.recordRetries != 4 ||
		c.deliveryTimeout != 9*time.Second {
		t.Errorf("explicit values not parsed: %+v", c)
	}
	if len(c.compression) != 1 || c.compression[0] != kgo.ZstdCompression() {
		t.Errorf("compression = %v", c.compression)
	}
	if c.tls == nil || !c.tls.InsecureSkipVerify {
		t.Errorf("tls = %+v, want enabled with skip verify", c.tls)
	}
}

func TestConfigCompressionAndSizes(t *testing.T) {
	for name, want := range map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	} {
		c, err := clientConfigFromParsed(parseConf(t, "seed_brokers: [ a:1 ]\ntopic: t\ncompression: "+name+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.compression) != 1 || c.compression[0] != want {
			t.Errorf("%s: got %v", name, c.compression)
		}
	}
	for in, want := range map[string]int32{"1MiB": 1 << 20, "100MB": 100_000_000, "50mib": 50 << 20, "1000": 1000} {
		c, err := clientConfigFromParsed(parseConf(t, "seed_brokers: [ a:1 ]\ntopic: t\nmax_message_bytes: \""+in+"\"\n"))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if c.maxMessageBytes != want {
			t.Errorf("max_message_bytes %q = %d, want %d", in, c.maxMessageBytes, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"no brokers":         {"seed_brokers: [ \",\" ]\ntopic: t\n", "seed_brokers"},
		"manual no part":     {"seed_brokers: [ a:1 ]\ntopic: t\npartitioner: manual\n", "partition must be set"},
		"part not manual":    {"seed_brokers: [ a:1 ]\ntopic: t\npartition: '1'\n", "only used when partitioner is manual"},
		"idempotent acks":    {"seed_brokers: [ a:1 ]\ntopic: t\nacks: leader\n", "idempotent_write needs acks: all"},
		"bad size":           {"seed_brokers: [ a:1 ]\ntopic: t\nmax_message_bytes: lots\n", "max_message_bytes"},
		"size too large":     {"seed_brokers: [ a:1 ]\ntopic: t\nmax_message_bytes: 4GiB\n", "out of range"},
		"bad sasl mechanism": {"seed_brokers: [ a:1 ]\ntopic: t\nsasl: [ { mechanism: OAUTHBEARER, username: u, password: hunter2-secret } ]\n", "unsupported value \"OAUTHBEARER\""},
		"sasl no username":   {"seed_brokers: [ a:1 ]\ntopic: t\nsasl: [ { mechanism: PLAIN, password: hunter2-secret } ]\n", "needs a username"},
		"buffered records":   {"seed_brokers: [ a:1 ]\ntopic: t\nmax_buffered_records: 0\n", "max_buffered_records"},
		"negative retries":   {"seed_brokers: [ a:1 ]\ntopic: t\nrecord_retries: -1\n", "record_retries"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := newFranzOutput(parseConf(t, tc.yaml), nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2-secret") {
				t.Errorf("error leaks the password: %q", err)
			}
		})
	}
}

func TestConfigSASL(t *testing.T) {
	c, err := clientConfigFromParsed(parseConf(t, `
seed_brokers: [ a:1 ]
topic: t
sasl:
  - mechanism: none
  - mechanism: SCRAM-SHA-512
    username: u
    password: p
  - mechanism: SCRAM-SHA-256
    username: u
    password: p
  - mechanism: PLAIN
    username: u
    password: p
`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range c.sasl {
		names = append(names, m.Name())
	}
	if got, want := strings.Join(names, ","), "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"; got != want {
		t.Errorf("mechanisms %s, want %s", got, want)
	}
}

// murmur2 is Kafka's hash (the Java client's Utils.murmur2), written out
// here so the test checks compatibility with other producers rather than
// with franz-go itself.
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(data))
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

func partitionerFor(t *testing.T, yaml string) kgo.TopicPartitioner {
	t.Helper()
	c, err := clientConfigFromParsed(parseConf(t, "seed_brokers: [ a:1 ]\ntopic: t\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	return c.partitioner.ForTopic("t")
}

func TestPartitionerSelection(t *testing.T) {
	const n = 7
	for _, yaml := range []string{"", "partitioner: murmur2_hash\n"} {
		p := partitionerFor(t, yaml)
		for _, key := range []string{"petition:42", "person:7", "group:abc", "x"} {
			r := &kgo.Record{Key: []byte(key)}
			if !p.RequiresConsistency(r) {
				t.Errorf("%q: keyed records must be placed consistently", yaml)
			}
			want := int((murmur2([]byte(key)) & 0x7fffffff) % n)
			if got := p.Partition(r, n); got != want {
				t.Errorf("%q: key %q on partition %d, Kafka's murmur2 puts it on %d", yaml, key, got, want)
			}
		}
	}

	rr := partitionerFor(t, "partitioner: round_robin\n")
	var seq []int
	for range 6 {
		seq = append(seq, rr.Partition(&kgo.Record{Key: []byte("same")}, 3))
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] != (seq[i-1]+1)%3 {
			t.Errorf("round_robin sequence %v does not cycle", seq)
			break
		}
	}

	lb := partitionerFor(t, "partitioner: least_backup\n")
	if _, ok := lb.(kgo.TopicBackupPartitioner); !ok {
		t.Errorf("least_backup partitioner %T does not pick by backup", lb)
	}

	man := partitionerFor(t, "partitioner: manual\npartition: '${! meta(\"p\") }'\n")
	for _, want := range []int32{2, 0, 5} {
		if got := man.Partition(&kgo.Record{Partition: want}, 7); got != int(want) {
			t.Errorf("manual: got %d, want %d", got, want)
		}
	}
}

func ceEnvelope() []byte {
	return []byte(`{"specversion":"1.0","id":"evt-1","source":"https://hookpipe.example/controlshift",` +
		`"type":"org.controlshift.petition.created","subject":"petition/42","time":"2024-05-01T10:00:00Z",` +
		`"datacontenttype":"application/json","provider":"controlshift","attempt":3,"verified":true,` +
		`"changes":{ "title" : {"from":"a","to":"b"} },"gone":null,"Bad-Name":"x",` +
		`"data":{"petition":{"slug":"save-the-park"}}}`)
}

func headerString(hs []kgo.RecordHeader) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "%s=%s\n", h.Key, h.Value)
	}
	return b.String()
}

func ceHeadersOf(prior []kgo.RecordHeader, value []byte) []kgo.RecordHeader {
	return appendMessageCloudEventHeaders(prior, service.NewMessage(value), value)
}

func TestCloudEventHeaders(t *testing.T) {
	got := headerString(ceHeadersOf(nil, ceEnvelope()))
	want := `ce_specversion=1.0
ce_id=evt-1
ce_source=https://hookpipe.example/controlshift
ce_type=org.controlshift.petition.created
ce_subject=petition/42
ce_time=2024-05-01T10:00:00Z
ce_attempt=3
ce_changes={"title":{"from":"a","to":"b"}}
ce_provider=controlshift
ce_verified=true
content-type=application/cloudevents+json
`
	if got != want {
		t.Errorf("headers:\n%s\nwant:\n%s", got, want)
	}

	// Escapes in string attributes are decoded.
	hs := ceHeadersOf(nil, []byte(`{"specversion":"1.0","id":"a\"b","source":"s","type":"t\u00e9"}`))
	if got := headerString(hs); got != "ce_specversion=1.0\nce_id=a\"b\nce_source=s\nce_type=té\ncontent-type=application/cloudevents+json\n" {
		t.Errorf("escaped attributes: %q", got)
	}

	notEnvelopes := map[string]string{
		"not json":          `hello`,
		"array":             `[{"specversion":"1.0","id":"1","source":"s","type":"t"}]`,
		"broken json":       `{"specversion":"1.0","id":"1","source":"s","type":"t"`,
		"old specversion":   `{"specversion":"0.3","id":"1","source":"s","type":"t"}`,
		"numeric version":   `{"specversion":1.0,"id":"1","source":"s","type":"t"}`,
		"missing id":        `{"specversion":"1.0","source":"s","type":"t"}`,
		"empty source":      `{"specversion":"1.0","id":"1","source":"","type":"t"}`,
		"type not a string": `{"specversion":"1.0","id":"1","source":"s","type":7}`,
		"empty":             ``,
		"two documents":     `{"specversion":"1.0","id":"1","source":"s","type":"t"} {}`,
	}
	for name, v := range notEnvelopes {
		prior := []kgo.RecordHeader{{Key: "k", Value: []byte("v")}}
		if got := ceHeadersOf(prior, []byte(v)); len(got) != 1 || got[0].Key != "k" {
			t.Errorf("%s: headers changed to %s", name, headerString(got))
		}
	}
}

func TestCloudEventExtensionNames(t *testing.T) {
	notExtensions := append([]string{"data", "data_base64", "datacontenttype", "", "Upper", "with_underscore", "dash-ed"}, ceLeadingAttrs[:]...)
	for _, name := range notExtensions {
		if isCEExtension(name) {
			t.Errorf("%q taken as an extension", name)
		}
	}
	for _, name := range []string{"provider", "resource", "action", "deliveryid", "receivedat", "replayed", "attempt", "x9"} {
		if !isCEExtension(name) || ceExtensionKey(name) != "ce_"+name || ceLeadingIndex(name) != -1 {
			t.Errorf("%q: extension %v, key %q, leading index %d", name, isCEExtension(name), ceExtensionKey(name), ceLeadingIndex(name))
		}
	}
	for i, name := range ceLeadingAttrs {
		if ceLeadingIndex(name) != i {
			t.Errorf("%q: leading index %d, want %d", name, ceLeadingIndex(name), i)
		}
	}
}

// A message whose structured form was set by a mapping carries Go numbers
// rather than JSON text; they render the same way.
func TestCloudEventHeadersFromStructured(t *testing.T) {
	msg := service.NewMessage(nil)
	msg.SetStructured(map[string]any{
		"specversion": "1.0", "id": "1", "source": "s", "type": "t",
		"count": int64(42), "ratio": 1.5, "tags": []any{"a<b", "c"},
	})
	value, err := msg.AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	got := headerString(appendMessageCloudEventHeaders(nil, msg, value))
	want := "ce_specversion=1.0\nce_id=1\nce_source=s\nce_type=t\nce_count=42\nce_ratio=1.5\nce_tags=[\"a<b\",\"c\"]\ncontent-type=application/cloudevents+json\n"
	if got != want {
		t.Errorf("headers:\n%s\nwant:\n%s", got, want)
	}
}

// More extensions than the header builder keeps on its stack, and values
// larger than it reserved room for: every header keeps its own value, in
// order, and appending to one cannot overwrite the next.
func TestCloudEventHeadersManyExtensions(t *testing.T) {
	envelope := map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t"}
	var want strings.Builder
	want.WriteString("ce_specversion=1.0\nce_id=1\nce_source=s\nce_type=t\n")
	big := map[string]any{"text": strings.Repeat("x", 300)}
	envelope["big"] = big
	want.WriteString(`ce_big={"text":"` + strings.Repeat("x", 300) + `"}` + "\n")
	for i := range 20 {
		name := fmt.Sprintf("x%02d", i)
		envelope[name] = int64(i)
		fmt.Fprintf(&want, "ce_%s=%d\n", name, i)
	}
	want.WriteString("content-type=application/cloudevents+json\n")

	hs := appendCloudEventHeaders(nil, envelope)
	if got := headerString(hs); got != want.String() {
		t.Fatalf("headers:\n%s\nwant:\n%s", got, want.String())
	}
	for i := range hs[:len(hs)-1] {
		next := string(hs[i+1].Value)
		_ = append(hs[i].Value, '!')
		if string(hs[i+1].Value) != next {
			t.Fatalf("appending to %s changed %s", hs[i].Key, hs[i+1].Key)
		}
	}
}

func TestRecordHeaders(t *testing.T) {
	msg := service.NewMessage(ceEnvelope())
	msg.MetaSetMut("hookpipe_provider", "controlshift")
	msg.MetaSetMut("hookpipe_event_id", "e1")
	msg.MetaSetMut("ce_id", "spoofed")
	msg.MetaSetMut("Content-Type", "text/plain")
	msg.MetaSetMut("x_trace", "t-1")
	msg.MetaSetMut("secret_token", "s")

	base := "seed_brokers: [ a:1 ]\ntopic: t\nmetadata:\n  include_prefixes: [ hookpipe_, ce_, Content ]\n  include_patterns: [ '^x_' ]\n"

	plainOut := newOutput(t, base)
	v, _ := msg.AsBytes()
	if got, want := headerString(plainOut.headers(msg, v)),
		"Content-Type=text/plain\nce_id=spoofed\nhookpipe_event_id=e1\nhookpipe_provider=controlshift\nx_trace=t-1\n"; got != want {
		t.Errorf("metadata headers:\n%s\nwant (sorted, filtered):\n%s", got, want)
	}

	ceOut := newOutput(t, base+"cloudevents_headers: true\n")
	got := headerString(ceOut.headers(msg, v))
	if strings.Contains(got, "spoofed") || strings.Contains(got, "text/plain") {
		t.Errorf("metadata shadows envelope headers:\n%s", got)
	}
	if !strings.HasPrefix(got, "hookpipe_event_id=e1\nhookpipe_provider=controlshift\nx_trace=t-1\nce_specversion=1.0\nce_id=evt-1\n") ||
		!strings.HasSuffix(got, "content-type=application/cloudevents+json\n") {
		t.Errorf("headers with cloudevents_headers:\n%s", got)
	}

	none := newOutput(t, "seed_brokers: [ a:1 ]\ntopic: t\n")
	if hs := none.headers(msg, v); len(hs) != 0 {
		t.Errorf("headers without metadata filter: %s", headerString(hs))
	}
}

func TestBuildRecords(t *testing.T) {
	o := newOutput(t, `
seed_brokers: [ a:1 ]
topic: 'hookpipe.${! json("type") }'
key: '${! json("subject") }'
partitioner: manual
partition: '${! meta("p") }'
timestamp_ms: '${! meta("ts") }'
`)
	good := service.NewMessage([]byte(`{"type":"petition.created","subject":"petition/42"}`))
	good.MetaSetMut("p", "2")
	good.MetaSetMut("ts", "1714557600000")
	notJSON := service.NewMessage([]byte(`not json`))
	notJSON.MetaSetMut("p", "1")
	notJSON.MetaSetMut("ts", "1")
	badPartition := service.NewMessage([]byte(`{"type":"a","subject":"b"}`))
	badPartition.MetaSetMut("p", "two")
	badPartition.MetaSetMut("ts", "1")
	badTS := service.NewMessage([]byte(`{"type":"a","subject":"b"}`))
	badTS.MetaSetMut("p", "0")
	badTS.MetaSetMut("ts", "yesterday")

	rb := o.buildRecords(service.MessageBatch{good, notJSON, badPartition, badTS})
	records, errs := rb.records, rb.errs
	if errs[0] != nil {
		t.Fatalf("good message: %v", errs[0])
	}
	r := records[0]
	if r.Topic != "hookpipe.petition.created" || string(r.Key) != "petition/42" || r.Partition != 2 ||
		!r.Timestamp.Equal(time.UnixMilli(1714557600000)) ||
		string(r.Value) != `{"type":"petition.created","subject":"petition/42"}` {
		t.Errorf("record = topic %q key %q partition %d ts %v value %q", r.Topic, r.Key, r.Partition, r.Timestamp, r.Value)
	}
	for i, want := range []string{"", "topic interpolation", "partition", "timestamp_ms"} {
		if i == 0 {
			continue
		}
		if errs[i] == nil || !strings.Contains(errs[i].Error(), want) {
			t.Errorf("message %d: error %v, want one about %s", i, errs[i], want)
		}
	}

	// Without a key field records carry no key.
	o2 := newOutput(t, "seed_brokers: [ a:1 ]\ntopic: t\n")
	rb = o2.buildRecords(service.MessageBatch{good})
	records, errs = rb.records, rb.errs
	if errs[0] != nil || records[0].Key != nil || !records[0].Timestamp.IsZero() {
		t.Errorf("default record: key %q ts %v err %v", records[0].Key, records[0].Timestamp, errs[0])
	}
}

// A structured message is encoded into a pooled buffer that goes back to the
// pool once its record is released; a message's own bytes never do, since
// they still belong to the message.
func TestRecordValueBuffers(t *testing.T) {
	o := newOutput(t, "seed_brokers: [ a:1 ]\ntopic: t\n")
	batch := func(n int) service.MessageBatch {
		structured := service.NewMessage(nil)
		structured.SetStructured(map[string]any{"id": fmt.Sprint("e", n), "n": n})
		return service.MessageBatch{structured, service.NewMessage([]byte(`{"raw":true}`))}
	}
	for n := range 50 {
		rb := o.buildRecords(batch(n))
		if rb.errs[0] != nil || rb.errs[1] != nil {
			t.Fatalf("errors %v", rb.errs)
		}
		if want := fmt.Sprintf(`{"id":"e%d","n":%d}`, n, n); string(rb.records[0].Value) != want {
			t.Fatalf("batch %d: value %s, want %s", n, rb.records[0].Value, want)
		}
		if rb.buffers[0] == nil {
			t.Fatal("an encoded value is not in a pooled buffer")
		}
		if rb.buffers[1] != nil || string(rb.records[1].Value) != `{"raw":true}` {
			t.Fatalf("a message's own bytes: buffer %v, value %s", rb.buffers[1], rb.records[1].Value)
		}
		rb.release(0)
		rb.release(1)
		if rb.buffers[0] != nil || rb.records[0].Value != nil {
			t.Fatal("a released record still holds its buffer")
		}
	}
}

func TestBatchResult(t *testing.T) {
	batch := service.MessageBatch{
		service.NewMessage([]byte("a")), service.NewMessage([]byte("b")), service.NewMessage([]byte("c")),
	}
	if err := batchResult(batch, make([]error, 3)); err != nil {
		t.Fatalf("all written: %v", err)
	}

	indexer := batch.Index()
	boom := errors.New("boom")
	err := batchResult(batch, []error{nil, boom, nil})
	var bErr *service.BatchError
	if !errors.As(err, &bErr) {
		t.Fatalf("partial failure is %T, want *service.BatchError", err)
	}
	if !strings.Contains(err.Error(), "1 of 3") || !errors.Is(err, boom) {
		t.Errorf("headline %q", err)
	}
	failed := map[int]bool{}
	bErr.WalkMessagesIndexedBy(indexer, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed[i] = true
		}
		return true
	})
	if len(failed) != 1 || !failed[1] {
		t.Errorf("failed indexes %v, want only 1", failed)
	}
}

func TestWriteBeforeConnect(t *testing.T) {
	o := newOutput(t, "seed_brokers: [ 127.0.0.1:1 ]\ntopic: t\n")
	err := o.WriteBatch(context.Background(), service.MessageBatch{service.NewMessage([]byte("x"))})
	if !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("write before connect: %v, want ErrNotConnected", err)
	}
	if err := o.Close(context.Background()); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestLintRules(t *testing.T) {
	linter := service.NewEnvironment().FullConfigSchema("", "").NewStreamConfigLinter()
	cases := map[string]string{
		"partitioner: manual\n":                   "partition must be set",
		"partition: '1'\n":                        "only used when partitioner is manual",
		"acks: none\n":                            "idempotent_write needs acks: all",
		"idempotent_write: false\nacks: none\n":   "",
		"partitioner: manual\npartition: '1'\n":   "",
		"cloudevents_headers: true\nrack_id: r\n": "",
	}
	for extra, want := range cases {
		yaml := "output:\n  kafka_franz:\n    seed_brokers: [ 127.0.0.1:1 ]\n    topic: t\n" +
			indent(extra, "    ")
		lints, err := linter.LintYAML([]byte(yaml))
		if err != nil {
			t.Fatalf("%q: %v", extra, err)
		}
		var msgs []string
		for _, l := range lints {
			msgs = append(msgs, l.What)
		}
		all := strings.Join(msgs, "; ")
		if want == "" && all != "" && !strings.Contains(all, "deprecated") {
			t.Errorf("%q: unexpected lints %s", extra, all)
		}
		if want != "" && !strings.Contains(all, want) {
			t.Errorf("%q: lints %q, want %q", extra, all, want)
		}
	}
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString(prefix + line)
		}
	}
	return b.String()
}

func TestSpecExamplesBuild(t *testing.T) {
	t.Setenv("KAFKA_PASSWORD", "example-password")
	for name, yaml := range map[string]string{"route": exampleRouteByType, "managed": exampleManagedCluster} {
		b := service.NewStreamBuilder()
		if err := b.SetYAML("input:\n  generate:\n    count: 1\n    mapping: 'root = {}'\n" + yaml); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Building constructs the output without connecting.
		if _, err := b.Build(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkBuildRecords measures turning a batch of 100 canonical envelopes
// into records. Messages are new in every round, as in a pipeline, so the
// JSON parse that json() interpolations and the CloudEvents headers share is
// included.
func BenchmarkBuildRecords(b *testing.B) {
	const conf = `
seed_brokers: [ a:1 ]
topic: 'hookpipe.${! json("type") }'
key: '${! json("subject") }'
metadata:
  include_prefixes: [ hookpipe_ ]
`
	envelope := ceEnvelope()
	for _, ce := range []bool{false, true} {
		b.Run(fmt.Sprintf("cloudevents_headers=%v", ce), func(b *testing.B) {
			o := newOutput(b, conf+fmt.Sprintf("cloudevents_headers: %v\n", ce))
			batch := make(service.MessageBatch, 100)
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					m := service.NewMessage(envelope)
					m.MetaSetMut("hookpipe_provider", "controlshift")
					m.MetaSetMut("hookpipe_event_id", "e1")
					batch[i] = m
				}
				rb := o.buildRecords(batch)
				if rb.errs[0] != nil {
					b.Fatal(rb.errs[0])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
		})
	}
	// As in hookpipe's pipelines: structured envelopes, encoded here, their
	// buffers released once written.
	var doc any
	dec := json.NewDecoder(bytes.NewReader(envelope))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		b.Fatal(err)
	}
	b.Run("structured", func(b *testing.B) {
		o := newOutput(b, "seed_brokers: [ a:1 ]\ntopic: events\nkey: '${! this.subject }'\ncloudevents_headers: true\n")
		batch := make(service.MessageBatch, 100)
		b.ReportAllocs()
		for b.Loop() {
			for i := range batch {
				m := service.NewMessage(nil)
				m.SetStructured(doc)
				batch[i] = m
			}
			rb := o.buildRecords(batch)
			if rb.errs[0] != nil {
				b.Fatal(rb.errs[0])
			}
			for i := range batch {
				rb.release(i)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
	})
}
