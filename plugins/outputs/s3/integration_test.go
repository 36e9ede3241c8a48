//go:build integration

package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/hookpipe/hookpipe/plugins/outputs/s3"
	"github.com/hookpipe/hookpipe/tests/harness"
)

// partitionMapping is the documented way to key archived batches: the parts
// of the key are computed while each message is still one JSON document, and
// its bytes are kept as they came.
const partitionMapping = `
mapping: |
  root = content()
  meta s3_partition = "provider=%s/type=%s/date=%s".format(
    @webhook_provider,
    this.type,
    this.time.ts_parse("2006-01-02T15:04:05Z07:00").ts_format("2006-01-02", "UTC")
  )
  meta s3_id = this.id
`

type event struct {
	provider string
	body     string
	meta     map[string]string
}

func ce(id, typ, time string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"hookpipe-test","type":%q,"time":%q,"datacontenttype":"application/json","data":{"n":1}}`, id, typ, time)
}

// startStream runs a stream whose only input is the returned producer; each
// call returns once the output acknowledged (nil) or rejected the batch, and
// fails the test at once if the stream stopped.
func startStream(t testing.TB, processorYAML, outputYAML string) func(service.MessageBatch) error {
	t.Helper()
	b := service.NewStreamBuilder()
	if err := b.SetLoggerYAML("level: warn"); err != nil {
		t.Fatal(err)
	}
	if processorYAML != "" {
		if err := b.AddProcessorYAML(processorYAML); err != nil {
			t.Fatalf("processor: %v", err)
		}
	}
	if err := b.AddOutputYAML(outputYAML); err != nil {
		t.Fatalf("output: %v", err)
	}
	produce, err := b.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	runCtx, stopped := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := stream.Run(context.Background())
		stopped(fmt.Errorf("stream stopped: %v", err))
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := stream.Stop(ctx); err != nil {
			t.Errorf("stopping stream: %v", err)
		}
		<-done
	})
	return func(batch service.MessageBatch) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(runCtx, 30*time.Second)
		defer cancel()
		err := produce(ctx, batch)
		if cause := context.Cause(runCtx); cause != nil {
			t.Fatal(cause)
		}
		return err
	}
}

func batchOf(events []event) service.MessageBatch {
	var batch service.MessageBatch
	for _, e := range events {
		m := service.NewMessage([]byte(e.body))
		m.MetaSetMut("webhook_provider", e.provider)
		for k, v := range e.meta {
			m.MetaSetMut(k, v)
		}
		batch = append(batch, m)
	}
	return batch
}

func outputYAML(srv *harness.S3Server, bucket, extra string) string {
	return fmt.Sprintf(`
aws_s3:
  bucket: %s
  endpoint: %s
  region: %s
  force_path_style_urls: true
  credentials:
    id: %q
    secret: %q
%s`, bucket, srv.Endpoint, srv.Region, srv.AccessKey, srv.SecretKey, extra)
}

func uniqueBucket(name string) string {
	return fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
}

// Several CloudEvents batched with group_by_value + archive lines become one
// NDJSON object per provider/type/day, keyed as documented, with tags,
// content type and filtered metadata; a data-derived ".." cannot climb out of
// its partition.
func TestIntegrationNDJSONPartitions(t *testing.T) {
	srv := harness.S3(t)
	bucket := uniqueBucket("hookpipe-ndjson")
	srv.CreateBucket(t, bucket)

	events := []event{
		{provider: "controlshift", body: ce("cs-1", "controlshift.petition.created", "2026-03-04T10:00:00Z"),
			meta: map[string]string{"webhook_delivery": "d1"}},
		{provider: "thecity", body: ce("tc-1", "thecity.users.create", "2026-03-04T11:00:00Z"),
			meta: map[string]string{"note": "café"}},
		{provider: "controlshift", body: ce("cs-2", "controlshift.petition.created", "2026-03-04T23:59:59.5Z")},
		// 00:00:01 at +01:00 is still the 4th in UTC.
		{provider: "controlshift", body: ce("cs-3", "controlshift.petition.created", "2026-03-05T00:00:01+01:00")},
		{provider: "thecity", body: ce("tc-2", "thecity.users.create", "2026-03-05T08:00:00Z")},
		{provider: "thecity", body: ce("../../../escape", "thecity.users.update", "2026-03-05T09:00:00Z")},
	}

	produce := startStream(t, partitionMapping, outputYAML(srv, bucket, `
  path: '${! meta("s3_partition") }/${! meta("s3_id") }.ndjson'
  content_type: application/x-ndjson
  cache_control: no-cache
  metadata:
    exclude_prefixes: [ s3_ ]
  tags:
    provider: '${! meta("webhook_provider") }'
    source: hookpipe
  batching:
    count: 6
    processors:
      - group_by_value:
          value: '${! meta("s3_partition") }'
      - archive:
          format: lines
`))
	if err := produce(batchOf(events)); err != nil {
		t.Fatalf("write was not acknowledged: %v\n%s", err, srv.LogTail())
	}

	join := func(idx ...int) []byte {
		var parts [][]byte
		for _, i := range idx {
			parts = append(parts, []byte(events[i].body))
		}
		return bytes.Join(parts, []byte("\n"))
	}
	want := map[string]struct {
		body     []byte
		provider string
		meta     map[string]string
	}{
		"provider=controlshift/type=controlshift.petition.created/date=2026-03-04/cs-1.ndjson": {
			join(0, 2, 3), "controlshift", map[string]string{"webhook_provider": "controlshift", "webhook_delivery": "d1"}},
		"provider=thecity/type=thecity.users.create/date=2026-03-04/tc-1.ndjson": {
			join(1), "thecity", map[string]string{"webhook_provider": "thecity", "note": "café"}},
		"provider=thecity/type=thecity.users.create/date=2026-03-05/tc-2.ndjson": {
			join(4), "thecity", map[string]string{"webhook_provider": "thecity"}},
		"provider=thecity/type=thecity.users.update/date=2026-03-05/%2E%2E/%2E%2E/%2E%2E/escape.ndjson": {
			join(5), "thecity", map[string]string{"webhook_provider": "thecity"}},
	}
	var wantKeys []string
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	sort.Strings(wantKeys)
	gotKeys := srv.ListObjects(t, bucket, "")
	if !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("objects in bucket:\n  %s\nwant:\n  %s", strings.Join(gotKeys, "\n  "), strings.Join(wantKeys, "\n  "))
	}

	for key, w := range want {
		obj := srv.GetObject(t, bucket, key)
		if !bytes.Equal(obj.Body, w.body) {
			t.Errorf("%s body:\n%q\nwant:\n%q", key, obj.Body, w.body)
		}
		if obj.ContentType != "application/x-ndjson" {
			t.Errorf("%s content type %q", key, obj.ContentType)
		}
		if cc := obj.Header["Cache-Control"]; len(cc) != 1 || cc[0] != "no-cache" {
			t.Errorf("%s Cache-Control %q", key, cc)
		}
		if len(obj.Tags) != 2 || obj.Tags["provider"] != w.provider || obj.Tags["source"] != "hookpipe" {
			t.Errorf("%s tags %v, want provider=%s source=hookpipe", key, obj.Tags, w.provider)
		}
		if len(obj.Metadata) != len(w.meta) {
			t.Errorf("%s metadata %v, want %v", key, obj.Metadata, w.meta)
		}
		for k, v := range w.meta {
			if obj.Metadata[k] != v {
				t.Errorf("%s metadata %s=%q, want %q (all: %v)", key, k, obj.Metadata[k], v, obj.Metadata)
			}
		}
	}
}

// A message whose key cannot be built fails alone; the others of its batch
// are written, and only the failed ones are reported.
func TestIntegrationMessageFailureIsolated(t *testing.T) {
	srv := harness.S3(t)
	bucket := uniqueBucket("hookpipe-partial")
	srv.CreateBucket(t, bucket)

	produce := startStream(t, "", outputYAML(srv, bucket, `
  path: '${! json("key") }'
`))
	batch := service.MessageBatch{
		service.NewMessage([]byte(`{"key":"a.json"}`)),
		service.NewMessage([]byte(`{"key":"///"}`)), // nothing left once leading slashes go
		service.NewMessage([]byte(`not json`)),      // the path cannot be resolved
		service.NewMessage([]byte(`{"key":"c.json"}`)),
	}
	err := produce(batch)
	if err == nil {
		t.Fatal("a batch with unresolvable keys was acknowledged")
	}
	got := srv.ListObjects(t, bucket, "")
	if want := []string{"a.json", "c.json"}; !slices.Equal(got, want) {
		t.Fatalf("objects %v, want %v (error was %v)", got, want, err)
	}
	if b := srv.GetObject(t, bucket, "c.json").Body; string(b) != `{"key":"c.json"}` {
		t.Errorf("c.json body %q", b)
	}
}

// Within a batch, messages that share a key are written in order: the last
// one is what the bucket keeps.
func TestIntegrationSharedKeyLastWins(t *testing.T) {
	srv := harness.S3(t)
	bucket := uniqueBucket("hookpipe-order")
	srv.CreateBucket(t, bucket)

	produce := startStream(t, "", outputYAML(srv, bucket, `
  path: '${! json("key") }'
`))
	for round := range 5 {
		var batch service.MessageBatch
		for i := range 8 {
			batch = append(batch, service.NewMessage([]byte(fmt.Sprintf(`{"key":"k%d","round":%d,"i":%d}`, i%3, round, i))))
		}
		if err := produce(batch); err != nil {
			t.Fatal(err)
		}
		for k, last := range map[string]int{"k0": 6, "k1": 7, "k2": 5} {
			want := fmt.Sprintf(`{"key":%q,"round":%d,"i":%d}`, k, round, last)
			if got := srv.GetObject(t, bucket, k).Body; string(got) != want {
				t.Fatalf("round %d: %s holds %s, want %s", round, k, got, want)
			}
		}
	}
}

// While the server is down a batch is held, not acknowledged and not
// failed: the output reports itself not connected and reconnects until the
// server answers, then writes the same batch, without a retry from upstream
// and without a restart.
func TestIntegrationOutage(t *testing.T) {
	srv := harness.LocalS3(t)
	bucket := uniqueBucket("hookpipe-outage")
	srv.CreateBucket(t, bucket)

	produce := startStream(t, "", outputYAML(srv, bucket, `
  path: '${! json("id") }.json'
  timeout: 2s
`))
	msgs := func(ids ...string) service.MessageBatch {
		var b service.MessageBatch
		for _, id := range ids {
			b = append(b, service.NewMessage([]byte(fmt.Sprintf(`{"id":%q}`, id))))
		}
		return b
	}

	if err := produce(msgs("before")); err != nil {
		t.Fatalf("write before the outage: %v", err)
	}

	srv.Stop(t)
	held := make(chan error, 1)
	go func() { held <- produce(msgs("during-1", "during-2", "during-3")) }()
	select {
	case err := <-held:
		t.Fatalf("a write during the outage was answered (%v): it should be held until the server is back", err)
	case <-time.After(3 * time.Second):
	}

	srv.Start(t)
	if err := <-held; err != nil {
		t.Fatalf("the held batch after the server came back: %v\n%s", err, srv.LogTail())
	}
	want := []string{"before.json", "during-1.json", "during-2.json", "during-3.json"}
	if got := srv.ListObjects(t, bucket, ""); !slices.Equal(got, want) {
		t.Fatalf("objects %v, want %v", got, want)
	}
	if b := srv.GetObject(t, bucket, "during-2.json").Body; string(b) != `{"id":"during-2"}` {
		t.Errorf("during-2.json body %q", b)
	}
}

// BenchmarkIntegrationPut measures objects written per second through a real
// stream into the harness's server, ~1 KB each, in producer batches of 64.
func BenchmarkIntegrationPut(b *testing.B) {
	srv := harness.S3(b)
	bucket := uniqueBucket("hookpipe-bench")
	srv.CreateBucket(b, bucket)
	produce := startStream(b, "", outputYAML(srv, bucket, `
  path: 'bench/${! counter() }.json'
`))
	body := []byte(ce("bench", "thecity.users.update", "2026-03-04T10:00:00Z") + strings.Repeat(" ", 800))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	n := 0
	for n < b.N {
		var batch service.MessageBatch
		for i := 0; i < 64 && n < b.N; i++ {
			batch = append(batch, service.NewMessage(body))
			n++
		}
		if err := produce(batch); err != nil {
			b.Fatal(err)
		}
	}
}
