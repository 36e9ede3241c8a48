package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	_ "github.com/hookpipe/hookpipe/plugins/webhook"
)

const (
	csPassword   = "cs-secret-current"
	csPrevious   = "cs-secret-previous"
	citySecret   = "city-shared-value"
	cityHMACKey  = "city-hmac-key"
	validCSBody  = `{"type":"petition.launched","data":{"slug":"a"},"jid":"j1"}`
	validCityDoc = `{"webhook_object":"User","webhook_event":"destroy","id":1}`
)

// received collects what reached the output.
type received struct {
	mu   sync.Mutex
	msgs []*service.Message
}

func (r *received) add(b service.MessageBatch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range b {
		r.msgs = append(r.msgs, m.Copy())
	}
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// recordingSink keeps what it writes and fails each message whose content
// contains "FAIL", the way a sink rejects one row of a batch.
type recordingSink struct {
	got    *received
	failOn string // content marking a message this sink fails; "FAIL" when empty
}

// Archive outputs of the stream under test, reset by each startStream.
var archived, rejectedArchived = &received{}, &received{}

func (r *recordingSink) Connect(context.Context) error { return nil }
func (r *recordingSink) Close(context.Context) error   { return nil }

func (r *recordingSink) WriteBatch(_ context.Context, batch service.MessageBatch) error {
	marker := r.failOn
	if marker == "" {
		marker = "FAIL"
	}
	berr := service.NewBatchError(batch, errors.New("write failed"))
	var ok service.MessageBatch
	for i, m := range batch {
		c, _ := m.AsBytes()
		if bytes.Contains(c, []byte(marker)) {
			berr.Failed(i, errors.New("write failed"))
			continue
		}
		ok = append(ok, m)
	}
	r.got.add(ok)
	if len(ok) < len(batch) {
		return berr
	}
	return nil
}

// startStream runs webhook_server with the given extra input fields and
// pipeline, delivering to a Go consumer that fails a message when its
// content contains "FAIL". It returns the base URL and what was written.
func startStream(t *testing.T, inputExtra, pipeline string) (string, *received) {
	t.Helper()
	addr := freeAddr(t)
	got := &received{}
	archived, rejectedArchived = &received{}, &received{}
	env := service.NewEnvironment()
	err := env.RegisterBatchOutput("recording_sink", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			return &recordingSink{got: got}, service.BatchPolicy{}, 1, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string]*received{"archive_sink": archived, "rejected_sink": rejectedArchived} {
		rec := rec
		if err := env.RegisterBatchOutput(name, service.NewConfigSpec(),
			func(*service.ParsedConfig, *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
				return &recordingSink{got: rec, failOn: "ARCHIVEFAIL"}, service.BatchPolicy{}, 1, nil
			}); err != nil {
			t.Fatal(err)
		}
	}
	b := env.NewStreamBuilder()
	err = b.SetYAML(fmt.Sprintf(`
output:
  recording_sink: {}

input:
  webhook_server:
    address: %s
    timeout: 2s
%s
    endpoints:
      - path: /webhooks/controlshift
        provider: controlshift
        auth:
          basic:
            username: controlshift
            passwords: [ %q, %q ]
      - path: /webhooks/cs-token
        provider: controlshift
        auth:
          token:
            in: path
            secrets: [ "path-token" ]
      - path: /webhooks/cs-query
        provider: controlshift
        auth:
          token:
            in: query
            name: token
            secrets: [ "query-token" ]
      - path: /webhooks/thecity
        provider: thecity
        lenient_json: true
        auth:
          city_signature:
            mode: shared
            secrets: [ %q ]
      - path: /webhooks/thecity-hmac
        provider: thecity
        auth:
          city_signature:
            mode: hmac_sha256
            encoding: hex
            secrets: [ %q ]
%s
`, addr, inputExtra, csPassword, csPrevious, citySecret, cityHMACKey, pipeline))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetLoggerYAML(`level: none`); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = stream.Run(ctx)
	}()
	t.Cleanup(func() {
		_ = stream.Stop(context.Background())
		cancel()
		<-done
	})
	waitListening(t, addr)
	return "http://" + addr, got
}

type call struct {
	method, path, body, contentType string
	header                          map[string]string
	user, pass                      string
}

func do(t *testing.T, base string, c call) (int, map[string]any, http.Header) {
	t.Helper()
	if c.method == "" {
		c.method = http.MethodPost
	}
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.contentType != "-" {
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("reply body is not JSON: %q", raw)
	}
	return res.StatusCode, body, res.Header
}

func hmacHex(key, body string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestStatusCodes(t *testing.T) {
	base, got := startStream(t, "    max_body_bytes: 2048", "")
	cs := func(body string) call {
		return call{path: "/webhooks/controlshift", body: body, user: "controlshift", pass: csPassword}
	}
	big := `{"type":"x","data":{"pad":"` + strings.Repeat("a", 4096) + `"}}`
	cases := []struct {
		name    string
		call    call
		status  int
		written bool
	}{
		{"basic auth current password", cs(validCSBody), 200, true},
		{"basic auth previous password (rotation)", call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPrevious}, 200, true},
		{"basic auth wrong password", call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: "nope"}, 401, false},
		{"basic auth wrong user", call{path: "/webhooks/controlshift", body: validCSBody, user: "admin", pass: csPassword}, 401, false},
		{"basic auth missing", call{path: "/webhooks/controlshift", body: validCSBody}, 401, false},
		{"token in path", call{path: "/webhooks/cs-token/path-token", body: validCSBody}, 200, true},
		{"wrong token in path", call{path: "/webhooks/cs-token/other", body: validCSBody}, 401, false},
		{"missing token in path", call{path: "/webhooks/cs-token", body: validCSBody}, 401, false},
		{"token in query", call{path: "/webhooks/cs-query?token=query-token", body: validCSBody}, 200, true},
		{"wrong token in query", call{path: "/webhooks/cs-query?token=query-tokenX", body: validCSBody}, 401, false},
		{"city shared signature", call{path: "/webhooks/thecity", body: validCityDoc, header: map[string]string{"X-City-Webhook-Signature": citySecret}}, 200, true},
		{"city wrong signature", call{path: "/webhooks/thecity", body: validCityDoc, header: map[string]string{"X-City-Webhook-Signature": citySecret + "x"}}, 401, false},
		{"city missing signature", call{path: "/webhooks/thecity", body: validCityDoc}, 401, false},
		{"city hmac", call{path: "/webhooks/thecity-hmac", body: validCityDoc, header: map[string]string{"X-City-Webhook-Signature": hmacHex(cityHMACKey, validCityDoc)}}, 200, true},
		{"city hmac over another body", call{path: "/webhooks/thecity-hmac", body: validCityDoc, header: map[string]string{"X-City-Webhook-Signature": hmacHex(cityHMACKey, validCityDoc+" ")}}, 401, false},
		{"city lenient nil accepted", call{path: "/webhooks/thecity", body: `{"webhook_object":"Group","webhook_event":"create","id":1,"nickname":nil,}`, header: map[string]string{"X-City-Webhook-Signature": citySecret}}, 200, true},
		{"strict endpoint rejects nil", call{path: "/webhooks/thecity-hmac", body: `{"id":nil}`, header: map[string]string{"X-City-Webhook-Signature": hmacHex(cityHMACKey, `{"id":nil}`)}}, 400, false},
		{"malformed JSON", cs(`{"type":`), 400, false},
		{"duplicate keys", cs(`{"type":"a","data":{},"type":"b"}`), 400, false},
		{"deep nesting within limits", cs(`{"a":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`), 200, true},
		{"nesting beyond 512 levels", cs(`{"a":` + strings.Repeat("[", 512) + strings.Repeat("]", 512) + `}`), 400, false},
		{"huge number", cs(`{"type":"x","data":{"n":1` + strings.Repeat("0", 400) + `}}`), 200, true},
		{"JSON array", cs(`[1,2]`), 400, false},
		{"JSON string", cs(`"hello"`), 400, false},
		{"invalid UTF-8", cs("{\"type\":\"\xff\"}"), 400, false},
		{"empty body", cs(``), 400, false},
		{"too large", cs(big), 413, false},
		{"wrong method", call{method: http.MethodGet, path: "/webhooks/controlshift"}, 405, false},
		{"unknown path", call{path: "/webhooks/other", body: validCSBody}, 404, false},
		{"form content type", call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword, contentType: "application/x-www-form-urlencoded"}, 415, false},
		{"json suffix content type", call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword, contentType: "application/cloudevents+json; charset=utf-8"}, 200, true},
		{"no content type", call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword, contentType: "-"}, 200, true},
		{"output nack answers 503", cs(`{"type":"FAIL","data":{}}`), 503, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := got.count()
			status, body, hdr := do(t, base, c.call)
			if status != c.status {
				t.Fatalf("status %d, want %d (body %v)", status, c.status, body)
			}
			if id, _ := body["request_id"].(string); id == "" || id != hdr.Get("X-Request-Id") {
				t.Errorf("reply's request id %v, header %q", body["request_id"], hdr.Get("X-Request-Id"))
			}
			if hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("reply headers %v", hdr)
			}
			if st, _ := body["status"].(string); (status == 200) != (st == "accepted") {
				t.Errorf("status %d with reply %v", status, body)
			}
			if e, _ := body["error"].(string); (status != 200) != (e != "") {
				t.Errorf("status %d with reply %v", status, body)
			}
			if c.written != (got.count() == before+1) {
				t.Errorf("written = %v, want %v", got.count() > before, c.written)
			}
		})
	}
}

func TestChunkedBodyOverLimit(t *testing.T) {
	base, got := startStream(t, "    max_body_bytes: 1024", "")
	pr, pw := io.Pipe()
	go func() {
		for range 64 {
			if _, err := pw.Write([]byte(strings.Repeat(" ", 100))); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/controlshift", pr)
	req.SetBasicAuth("controlshift", csPassword)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 || req.ContentLength > 0 || got.count() != 0 {
		t.Fatalf("chunked body over the limit: status %d (length %d), %d written", res.StatusCode, req.ContentLength, got.count())
	}
}

func TestSlowBodyTimesOut(t *testing.T) {
	base, got := startStream(t, "    read_timeout: 300ms", "")
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /webhooks/controlshift HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusRequestTimeout || got.count() != 0 {
		t.Fatalf("slow body: status %d, %d written", res.StatusCode, got.count())
	}
}

// A body that ends before its declared length is refused, whether it fits
// the buffer read up front or grows as it arrives.
func TestTruncatedBody(t *testing.T) {
	base, got := startStream(t, "", "")
	for _, declared := range []int{100, 200 << 10} {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		auth := base64.StdEncoding.EncodeToString([]byte("controlshift:" + csPassword))
		fmt.Fprintf(c, "POST /webhooks/controlshift HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", auth, declared, validCSBody)
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusBadRequest || got.count() != 0 {
			t.Fatalf("declared %d bytes, sent %d: status %d, %d written", declared, len(validCSBody), res.StatusCode, got.count())
		}
	}
}

func TestErrorBodiesLeakNoSecret(t *testing.T) {
	base, _ := startStream(t, "", "")
	_, body, _ := do(t, base, call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword + "x"})
	raw, _ := json.Marshal(body)
	for _, s := range []string{csPassword, csPrevious, citySecret} {
		if bytes.Contains(raw, []byte(s)) {
			t.Fatalf("reply %s contains a secret", raw)
		}
	}
}

func TestMetadata(t *testing.T) {
	base, got := startStream(t, "    metadata_headers: [ User-Agent, X-Trace ]", "")
	status, body, _ := do(t, base, call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword,
		header: map[string]string{"User-Agent": "ControlShift/1.0", "X-Trace": "a\tb"}})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	m := got.msgs[0]
	want := map[string]string{
		"webhook_provider":   "controlshift",
		"webhook_endpoint":   "/webhooks/controlshift",
		"webhook_source":     "/webhooks/controlshift",
		"user-agent":         "ControlShift/1.0",
		"x-trace":            "ab",
		"webhook_request_id": body["request_id"].(string),
	}
	for k, v := range want {
		if g, _ := m.MetaGet(k); g != v {
			t.Errorf("metadata %s = %q, want %q", k, g, v)
		}
	}
	if ra, _ := m.MetaGet("webhook_remote_addr"); !strings.HasPrefix(ra, "127.0.0.1:") {
		t.Errorf("webhook_remote_addr = %q", ra)
	}
	ts, _ := m.MetaGet("webhook_received_at")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("webhook_received_at %q: %v", ts, err)
	}
	raw, _ := m.AsBytes()
	if string(raw) != validCSBody {
		t.Errorf("content %q is not the raw body", raw)
	}
}

// Concurrent requests land in shared batches, yet each is answered from its
// own message's outcome.
func TestConcurrentRequestsAnsweredFromOwnOutcome(t *testing.T) {
	base, got := startStream(t, "    batch_period: 20ms", "")
	const n = 60
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			typ := "ok"
			if i%3 == 0 {
				typ = "FAIL"
			}
			statuses[i], _, _ = do(t, base, call{path: "/webhooks/controlshift", user: "controlshift", pass: csPassword,
				body: fmt.Sprintf(`{"type":"%s","data":{"n":%d}}`, typ, i)})
		}()
	}
	wg.Wait()
	okCount := 0
	for i, s := range statuses {
		want := 200
		if i%3 == 0 {
			want = 503
		}
		if s != want {
			t.Errorf("request %d: status %d, want %d", i, s, want)
		}
		if s == 200 {
			okCount++
		}
	}
	if got.count() != okCount {
		t.Errorf("%d written, %d answered 200", got.count(), okCount)
	}
}

// An output batching policy with a count and no period acknowledges nothing
// until the count is reached. max_pending_batches must not stop the stream
// then: past max_pending_wait batches go beyond the limit, the count is
// reached, and those requests are answered 200.
func TestMaxPendingBatchesWithCountOnlyBatching(t *testing.T) {
	addr := freeAddr(t)
	b := service.NewStreamBuilder()
	b.SetLoggerYAML(`level: none`)
	if err := b.SetYAML(fmt.Sprintf(`
input:
  webhook_server:
    address: %s
    timeout: 3s
    max_pending_batches: 2
    max_pending_wait: 20ms
    endpoints:
      - { path: /hook, provider: test, auth: { allow_unauthenticated: true } }
output:
  broker:
    outputs: [ { drop: {} } ]
    batching: { count: 10 }
`, addr)); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = stream.Run(context.Background()) }()
	t.Cleanup(func() {
		// Bounded: a batcher short of its count never lets the stream
		// finish on its own.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stream.Stop(ctx)
	})
	waitListening(t, addr)
	var wg sync.WaitGroup
	statuses := make([]int, 10)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One after another, so the input makes small batches.
			time.Sleep(time.Duration(i) * 5 * time.Millisecond)
			res, err := http.Post("http://"+addr+"/hook", "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
			if err != nil {
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i, s)
		}
	}
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAckTimeoutAnswers503(t *testing.T) {
	base, _ := startStream(t, "", `
pipeline:
  processors:
    - sleep:
        duration: 3s
`)
	start := time.Now()
	status, _, hdr := do(t, base, call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword})
	if status != 503 {
		t.Fatalf("status %d, want 503", status)
	}
	if hdr.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if time.Since(start) > 2900*time.Millisecond {
		t.Errorf("answered only after the pipeline finished, not at the 2s timeout")
	}
}

func TestOverloadAnswers503Quickly(t *testing.T) {
	base, _ := startStream(t, "    max_in_flight: 2", `
pipeline:
  processors:
    - sleep:
        duration: 1s
`)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, base, call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword})
		}()
	}
	time.Sleep(200 * time.Millisecond)
	status, _, hdr := do(t, base, call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword})
	if status != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("third request: status %d Retry-After %q, want 503 with Retry-After", status, hdr.Get("Retry-After"))
	}
	wg.Wait()
}

func TestConfigErrors(t *testing.T) {
	for name, c := range map[string]struct{ conf, want string }{
		"no auth": {`
webhook_server:
  endpoints:
    - path: /a
      provider: controlshift
`, "no check is configured"},
		"empty secrets": {`
webhook_server:
  endpoints:
    - path: /a
      provider: thecity
      auth:
        city_signature:
          secrets: [ "" ]
`, "no secret is set"},
		"duplicate path": {`
webhook_server:
  endpoints:
    - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
    - { path: /a/, provider: y, auth: { allow_unauthenticated: true } }
`, "used twice"},
		"relative path": {`
webhook_server:
  endpoints:
    - { path: a, provider: x, auth: { allow_unauthenticated: true } }
`, "must start with /"},
		"negative pending batches": {`
webhook_server:
  max_pending_batches: -1
  endpoints:
    - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, "max_pending_batches must not be negative"},
		"no pending wait": {`
webhook_server:
  max_pending_batches: 2
  max_pending_wait: 0s
  endpoints:
    - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, "max_pending_wait must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			conf := c.conf
			b := service.NewStreamBuilder()
			b.SetLoggerYAML(`level: none`)
			if err := b.AddInputYAML(conf); err != nil {
				return // refused by the linter already
			}
			if err := b.AddOutputYAML(`drop: {}`); err != nil {
				t.Fatal(err)
			}
			stream, err := b.Build()
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = stream.Run(ctx)
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("config accepted (run ended with %v)", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}
