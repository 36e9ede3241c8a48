//go:build integration

package acceptance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/tests/harness"
)

var sinkEnv = []string{"CONTROLSHIFT_PASSWORD=" + csPassword, "THECITY_SECRET=" + citySecret}

// sendAll posts every documented example, eight at a time as a provider's
// workers would, and fails unless each is answered 200.
func sendAll(t *testing.T, hp *harness.Hookpipe) map[string]bool {
	t.Helper()
	types := map[string]bool{}
	jobs := make(chan examples.Example)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				path, hdr := providerAuth(e)
				if status, body := hp.Post(t, path, e.Body, hdr); status != 200 {
					t.Errorf("%s/%s: status %d %s\n%s", e.Provider, e.Name, status, body, harness.TailFile(hp.LogPath, 3000))
				}
			}
		}()
	}
	for _, e := range examples.All() {
		types[expectedType(e)] = true
		jobs <- e
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return types
}

// checkEnvelopes validates envelopes with the CloudEvents SDK and checks that
// every documented type is there exactly once per example.
func checkEnvelopes(t *testing.T, envelopes [][]byte, wantTypes map[string]bool) map[string]cloudevents.Event {
	t.Helper()
	byID := map[string]cloudevents.Event{}
	got := map[string]bool{}
	for _, raw := range envelopes {
		var ev cloudevents.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("not a CloudEvent: %v\n%s", err, raw)
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("invalid CloudEvent %s: %v", ev.ID(), err)
		}
		if _, dup := byID[ev.ID()]; dup {
			t.Errorf("event %s stored twice", ev.ID())
		}
		byID[ev.ID()] = ev
		got[ev.Type()] = true
	}
	if len(byID) != 45 {
		t.Errorf("%d distinct events, want 45 (one per documented example)", len(byID))
	}
	for typ := range wantTypes {
		if !got[typ] {
			t.Errorf("no event of type %s", typ)
		}
	}
	return byID
}

func TestPostgresSink(t *testing.T) {
	pg := harness.Postgres(t)
	hp := harness.StartHookpipe(t, "configs/postgres.yaml", append(sinkEnv, "HOOKPIPE_POSTGRES_DSN="+pg.DSN)...)
	wantTypes := sendAll(t, hp)

	// Read back with psql, one envelope per line.
	rows := strings.Split(strings.TrimSpace(pg.Psql(t, "SELECT event::text FROM events ORDER BY id")), "\n")
	var envelopes [][]byte
	for _, r := range rows {
		envelopes = append(envelopes, []byte(r))
	}
	checkEnvelopes(t, envelopes, wantTypes)

	// A duplicate delivery, concurrently and later, leaves one row.
	e := examples.All()[0]
	path, hdr := providerAuth(e)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, body := hp.Post(t, path, e.Body, hdr); status != 200 {
				t.Errorf("duplicate: %d %s", status, body)
			}
		}()
	}
	wg.Wait()
	if n := strings.TrimSpace(pg.Psql(t, "SELECT count(*) FROM events")); n != "45" {
		t.Fatalf("%s rows after duplicates, want 45", n)
	}
	if n := strings.TrimSpace(pg.Psql(t, "SELECT count(*) FROM dead_letters")); n != "0" {
		t.Fatalf("%s dead letters, want 0", n)
	}
}

// While Postgres is down, readiness on the webhook listener fails even with
// no traffic (so a load balancer stops sending before deliveries fail),
// liveness holds, the engine's /ready fails once a write found the database
// gone, and every delivery answers 503 after the input's timeout (its batch is
// held, not failed). Once Postgres is back, readiness recovers and the
// provider's retries land exactly once.
func TestPostgresOutage(t *testing.T) {
	pg := harness.StartThrowawayPostgres(t)
	hp := harness.StartHookpipe(t, "configs/postgres.yaml", append(sinkEnv, "HOOKPIPE_POSTGRES_DSN="+pg.DSN)...)
	all := examples.All()
	path, hdr := providerAuth(all[0])
	if status, body := hp.Post(t, path, all[0].Body, hdr); status != 200 {
		t.Fatalf("before the outage: %d %s", status, body)
	}
	waitStatus(t, hp.URL+"/readyz", 200)
	waitStatus(t, hp.EngineURL+"/ready", 200)

	pg.Stop(t)
	// No delivery yet: the sink probe alone fails readiness.
	if body := waitStatus(t, hp.URL+"/readyz", 503); !strings.Contains(body, "sink unreachable") {
		t.Errorf("/readyz while Postgres is down: %s", body)
	}
	if status, _ := getStatus(t, hp.URL+"/healthz"); status != 200 {
		t.Errorf("/healthz followed the sink: %d", status)
	}

	pending := all[1:6]
	var wg sync.WaitGroup
	statuses := make([]int, len(pending))
	for i, e := range pending {
		wg.Go(func() {
			path, hdr := providerAuth(e)
			statuses[i], _ = hp.Post(t, path, e.Body, hdr)
		})
	}
	// A write found the database gone: the engine's own readiness fails too.
	waitStatus(t, hp.EngineURL+"/ready", 503)
	wg.Wait()
	for i, s := range statuses {
		if s != 503 {
			t.Errorf("%s during the outage: status %d, want 503", pending[i].Name, s)
		}
	}

	pg.Start(t)
	waitStatus(t, hp.URL+"/readyz", 200)
	waitStatus(t, hp.EngineURL+"/ready", 200)

	// The provider retries until it gets a 200.
	for _, e := range pending {
		path, hdr := providerAuth(e)
		deadline := time.Now().Add(60 * time.Second)
		for {
			status, _ := hp.Post(t, path, e.Body, hdr)
			if status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never landed after Postgres came back (last status %d)\n%s", e.Name, status, harness.TailFile(hp.LogPath, 3000))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if n := strings.TrimSpace(pg.Psql(t, "SELECT count(*) FROM events")); n != strconv.Itoa(1+len(pending)) {
		t.Fatalf("%s rows, want %d: each event exactly once", n, 1+len(pending))
	}
}

// getStatus GETs url and returns the status and body.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitStatus polls url until it answers want (at most 30 s) and returns the
// body of that answer.
func waitStatus(t *testing.T, url string, want int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := getStatus(t, url)
		if status == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed %d %s, want %d", url, status, body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestS3Sink(t *testing.T) {
	s3 := harness.S3(t)
	const bucket = "hookpipe-acceptance"
	s3.CreateBucket(t, bucket)
	hp := harness.StartHookpipe(t, "configs/s3.yaml", append(sinkEnv,
		"HOOKPIPE_S3_BUCKET="+bucket,
		"HOOKPIPE_S3_ENDPOINT="+s3.Endpoint,
		"HOOKPIPE_S3_PATH_STYLE=true",
		"AWS_REGION="+s3.Region,
		"AWS_ACCESS_KEY_ID="+s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s3.SecretKey,
	)...)
	wantTypes := sendAll(t, hp)

	// Read back with an independent client; every line of every object is one envelope.
	var envelopes [][]byte
	keys := s3.ListObjects(t, bucket, "")
	for _, key := range keys {
		if !strings.HasPrefix(key, "events/provider=") || !strings.HasSuffix(key, ".ndjson") || !strings.Contains(key, "/date=") {
			t.Errorf("unexpected key %s", key)
		}
		obj := s3.GetObject(t, bucket, key)
		sc := bufio.NewScanner(bytes.NewReader(obj.Body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			envelopes = append(envelopes, line)
			var ev cloudevents.Event
			if err := json.Unmarshal(line, &ev); err == nil {
				date := ev.Time().UTC().Format("2006-01-02")
				if !strings.Contains(key, "/type="+ev.Type()+"/date="+date+"/") {
					t.Errorf("event %s (%s, %s) is in %s", ev.ID(), ev.Type(), date, key)
				}
			}
		}
	}
	checkEnvelopes(t, envelopes, wantTypes)
}

func TestKafkaSink(t *testing.T) {
	kafka := harness.Kafka(t)
	hp := harness.StartHookpipe(t, "configs/kafka.yaml", append(sinkEnv,
		"HOOKPIPE_KAFKA_BROKERS="+kafka.Brokers, "HOOKPIPE_KAFKA_TOPIC_PREFIX=acceptance.")...)
	wantTypes := sendAll(t, hp)

	// Read every topic back with kcat, an independent client.
	perType := map[string]int{}
	for _, e := range examples.All() {
		perType[expectedType(e)]++
	}
	topics := map[string]int{}
	for typ, n := range perType {
		topics["acceptance."+typ] = n
	}
	var envelopes [][]byte
	for topic, records := range harness.ConsumeTopicsWithKcat(t, kafka.Brokers, topics) {
		typ := strings.TrimPrefix(topic, "acceptance.")
		for _, r := range records {
			var ev cloudevents.Event
			if err := json.Unmarshal([]byte(r.Value), &ev); err != nil {
				t.Fatalf("%s: value is not a CloudEvent: %v", r.Topic, err)
			}
			if !r.HasKey || r.Key != ev.Subject() {
				t.Errorf("%s: key %q, want the subject %q", r.Topic, r.Key, ev.Subject())
			}
			for header, want := range map[string]string{
				"ce_specversion": "1.0", "ce_id": ev.ID(), "ce_type": typ, "ce_source": ev.Source(),
				"ce_subject": ev.Subject(), "content-type": "application/cloudevents+json",
			} {
				if got, _ := r.Header(header); got != want {
					t.Errorf("%s: header %s = %q, want %q", r.Topic, header, got, want)
				}
			}
			if got, _ := r.Header("ce_time"); got != ev.Time().UTC().Format(time.RFC3339Nano) && got != ev.Time().UTC().Format(time.RFC3339) {
				t.Errorf("%s: ce_time %q does not match time %s", r.Topic, got, ev.Time())
			}
			envelopes = append(envelopes, []byte(r.Value))
		}
	}
	byID := checkEnvelopes(t, envelopes, wantTypes)

	// A provider's retries of delivered events are acknowledged without a
	// second record.
	for _, e := range examples.All()[:5] {
		path, hdr := providerAuth(e)
		if status, body := hp.Post(t, path, e.Body, hdr); status != 200 {
			t.Fatalf("retry: %d %s", status, body)
		}
	}
	total := 0
	for _, records := range harness.ConsumeTopicsWithKcat(t, kafka.Brokers, topics) {
		total += len(records)
	}
	if total != len(byID) {
		t.Fatalf("%d records after retries, want %d", total, len(byID))
	}
}

// While the Kafka broker is down, readiness on the webhook listener fails
// with no traffic at all (the output's probe finds no broker), liveness
// holds; once the broker is back, readiness recovers and deliveries land.
func TestKafkaOutageReadiness(t *testing.T) {
	kafka := harness.Kafka(t, harness.KafkaRestartable())
	hp := harness.StartHookpipe(t, "configs/kafka.yaml", append(sinkEnv,
		"HOOKPIPE_KAFKA_BROKERS="+kafka.Brokers, "HOOKPIPE_KAFKA_TOPIC_PREFIX=outage.")...)
	waitStatus(t, hp.URL+"/readyz", 200)

	kafka.Stop()
	if body := waitStatus(t, hp.URL+"/readyz", 503); !strings.Contains(body, "sink unreachable") {
		t.Errorf("/readyz while Kafka is down: %s", body)
	}
	if status, _ := getStatus(t, hp.URL+"/healthz"); status != 200 {
		t.Errorf("/healthz followed the sink: %d", status)
	}

	kafka.Start()
	waitStatus(t, hp.URL+"/readyz", 200)
	e := examples.All()[0]
	path, hdr := providerAuth(e)
	if status, body := hp.Post(t, path, e.Body, hdr); status != 200 {
		t.Fatalf("after the outage: %d %s", status, body)
	}
	topic := "outage." + expectedType(e)
	if got := harness.ConsumeWithKcat(t, kafka.Brokers, topic, 1); len(got) != 1 {
		t.Fatalf("%d records on %s, want 1", len(got), topic)
	}
}
