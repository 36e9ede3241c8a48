package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/hookpipe/hookpipe/plugins/archive"
)

const ceInput = `address: %s
archive:
  archive_sink: {}
endpoints:
  - path: /events
    provider: cloudevents
    cloudevents:
      enabled: true
      allowed_origins: [ events.example.com, "Other.Example.com" ]
      allowed_rate: "120"
    auth:
      token:
        in: header
        name: X-Token
        secrets: [ ce-token ]
  - path: /any-origin
    provider: cloudevents
    cloudevents: { enabled: true }
    auth: { allow_unauthenticated: true }
  - path: /plain
    provider: test
    auth: { allow_unauthenticated: true }
`

// sdkClient is the CloudEvents SDK's HTTP sender, pointed at url.
func sdkClient(t *testing.T, url string, header map[string]string) cloudevents.Client {
	t.Helper()
	opts := []cehttp.Option{cehttp.WithTarget(url)}
	for k, v := range header {
		opts = append(opts, cehttp.WithHeader(k, v))
	}
	p, err := cehttp.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sampleEvent(t *testing.T, id string) cloudevents.Event {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource("https://shop.example.com/orders")
	ev.SetType("com.example.order.created")
	ev.SetSubject("orders/42")
	ev.SetTime(time.Date(2026, 11, 24, 10, 30, 0, 0, time.FixedZone("CET", 3600)))
	ev.SetExtension("tenant", "acme")
	ev.SetExtension("priority", 3)
	if err := ev.SetData(cloudevents.ApplicationJSON, map[string]any{"order": 42, "total": "19.90", "note": "ä ✓"}); err != nil {
		t.Fatal(err)
	}
	return ev
}

// sent sends ev in the given mode and returns the HTTP status of the reply.
func sent(t *testing.T, c cloudevents.Client, ctx context.Context, ev cloudevents.Event) int {
	t.Helper()
	res := c.Send(ctx, ev)
	var httpRes *cehttp.Result
	if !errors.As(res, &httpRes) {
		t.Fatalf("no HTTP result: %v", res)
	}
	if cloudevents.IsACK(res) != (httpRes.StatusCode < 300) {
		t.Fatalf("SDK reading of %d: ACK %v", httpRes.StatusCode, cloudevents.IsACK(res))
	}
	return httpRes.StatusCode
}

// Both modes, sent by the CloudEvents SDK, reach the pipeline with what the
// cloudevents_webhook processor needs, and it reads the same event from both.
func TestCloudEventsBinaryAndStructured(t *testing.T) {
	addr, got := startInput(t, ceInput, `
pipeline:
  processors:
    - cloudevents_webhook: {}
`)
	c := sdkClient(t, "http://"+addr+"/events", map[string]string{"X-Token": "ce-token"})

	ev := sampleEvent(t, "order-42-created")
	if s := sent(t, c, cloudevents.WithEncodingBinary(context.Background()), ev); s != 200 {
		t.Fatalf("binary mode: %d", s)
	}
	if s := sent(t, c, cloudevents.WithEncodingStructured(context.Background()), ev); s != 200 {
		t.Fatalf("structured mode: %d", s)
	}
	if got.count() != 2 {
		t.Fatalf("%d written, want 2", got.count())
	}
	binary, structured := got.msgs[0], got.msgs[1]

	// The binary request kept its attribute headers and content type.
	for k, want := range map[string]string{"ce-id": "order-42-created", "ce-type": "com.example.order.created", "ce-tenant": "acme", "content-type": "application/json"} {
		if v, _ := binary.MetaGet(k); v != want {
			t.Errorf("binary metadata %s = %q, want %q", k, v, want)
		}
	}
	if v, _ := structured.MetaGet("content-type"); !strings.HasPrefix(v, "application/cloudevents+json") {
		t.Errorf("structured content-type %q", v)
	}
	// One event either way: same id, same normalized document.
	for _, m := range []string{"event_id", "event_type", "event_subject", "event_time", "event_delivery_id", "event_status"} {
		b, _ := binary.MetaGet(m)
		s, _ := structured.MetaGet(m)
		if b != s || b == "" {
			t.Errorf("%s: binary %q, structured %q", m, b, s)
		}
	}
	if s, _ := binary.MetaGet("event_status"); s != "valid" {
		e, _ := binary.MetaGet("event_error")
		t.Fatalf("event_status %q: %s", s, e)
	}
	if tm, _ := binary.MetaGet("event_time"); tm != "2026-11-24T09:30:00Z" {
		t.Errorf("event_time %q, want the time in UTC", tm)
	}
	var fromBinary, fromStructured cloudevents.Event
	for m, dst := range map[int]*cloudevents.Event{0: &fromBinary, 1: &fromStructured} {
		raw, _ := got.msgs[m].AsBytes()
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("message %d is not a CloudEvent: %v\n%s", m, err, raw)
		}
		if err := dst.Validate(); err != nil {
			t.Errorf("message %d: %v", m, err)
		}
	}
	if fromBinary.String() != fromStructured.String() {
		t.Errorf("the modes read differently:\nbinary:\n%s\nstructured:\n%s", fromBinary, fromStructured)
	}
	if fromBinary.ID() != ev.ID() || fromBinary.Source() != ev.Source() || fromBinary.Extensions()["tenant"] != "acme" || string(fromBinary.Data()) != string(ev.Data()) {
		t.Errorf("read back %s\nsent %s", fromBinary, ev)
	}

	// The archive keeps the binding's headers, so a replay reads the same event.
	var rec archive.Record
	raw, _ := archived.msgs[0].AsBytes()
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Headers["Ce-Id"] != "order-42-created" || rec.Headers["Ce-Specversion"] != "1.0" || rec.Headers["Content-Type"] != "application/json" {
		t.Errorf("archived headers %v", rec.Headers)
	}
	if _, ok := rec.Headers["X-Token"]; ok {
		t.Error("the token header was archived")
	}
}

func TestCloudEventsRefusals(t *testing.T) {
	addr, got := startInput(t, ceInput, "")
	base := "http://" + addr

	// Wrong credentials: the SDK sees a NACK with 401.
	if s := sent(t, sdkClient(t, base+"/events", map[string]string{"X-Token": "wrong"}), context.Background(), sampleEvent(t, "x")); s != 401 {
		t.Errorf("wrong token: %d", s)
	}
	for _, c := range []struct {
		name        string
		contentType string
		header      map[string]string
		body        string
		status      int
	}{
		{"no mode", "application/json", nil, `{"a":1}`, 400},
		{"batch", "application/cloudevents-batch+json", nil, `[{"specversion":"1.0"}]`, 415},
		{"binary with non-JSON data", "text/plain", map[string]string{"Ce-Specversion": "1.0"}, `hello`, 415},
		{"structured, not an object", "application/cloudevents+json", nil, `[1]`, 400},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+"/events", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.contentType)
		req.Header.Set("X-Token", "ce-token")
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.name, res.StatusCode, c.status)
		}
	}
	if got.count() != 0 {
		t.Errorf("%d refused requests were written", got.count())
	}
	// A plain endpoint takes a CloudEvent as any JSON body, without the binding.
	res, err := http.Post(base+"/plain", "application/cloudevents+json", strings.NewReader(`{"specversion":"1.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("plain endpoint: %d", res.StatusCode)
	}
}

// handshake sends a CloudEvents validation request.
func handshake(t *testing.T, url string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// The abuse-protection handshake of the CloudEvents web hook specification.
func TestCloudEventsHandshake(t *testing.T) {
	addr, got := startInput(t, ceInput, "")
	base := "http://" + addr
	for _, c := range []struct {
		name          string
		path          string
		header        map[string]string
		status        int
		origin, rate  string // "" when the header must be absent
		allowsPost    bool
		allowsOptions bool
	}{
		{"allowed origin, rate asked below the limit", "/events",
			map[string]string{"WebHook-Request-Origin": "events.example.com", "WebHook-Request-Rate": "60"}, 200, "events.example.com", "60", true, true},
		{"rate asked above the limit", "/events",
			map[string]string{"WebHook-Request-Origin": "events.example.com", "WebHook-Request-Rate": "1000"}, 200, "events.example.com", "120", true, true},
		{"no rate asked", "/events",
			map[string]string{"WebHook-Request-Origin": "events.example.com"}, 200, "events.example.com", "120", true, true},
		{"origins compare without case", "/events",
			map[string]string{"WebHook-Request-Origin": "other.example.COM"}, 200, "other.example.COM", "120", true, true},
		{"origin not allowed", "/events",
			map[string]string{"WebHook-Request-Origin": "evil.example.net", "WebHook-Request-Rate": "10"}, 403, "", "", true, true},
		{"no origin", "/events", nil, 400, "", "", true, true},
		{"any origin, no limit", "/any-origin",
			map[string]string{"WebHook-Request-Origin": "events.example.com", "WebHook-Request-Rate": "10"}, 200, "*", "10", true, true},
		{"any origin, no rate asked", "/any-origin",
			map[string]string{"WebHook-Request-Origin": "events.example.com"}, 200, "*", "*", true, true},
		{"endpoint without CloudEvents", "/plain",
			map[string]string{"WebHook-Request-Origin": "events.example.com"}, 405, "", "", true, false},
	} {
		res := handshake(t, base+c.path, c.header)
		h := res.Header
		if res.StatusCode != c.status || h.Get("WebHook-Allowed-Origin") != c.origin || h.Get("WebHook-Allowed-Rate") != c.rate {
			t.Errorf("%s: %d origin %q rate %q, want %d %q %q", c.name, res.StatusCode,
				h.Get("WebHook-Allowed-Origin"), h.Get("WebHook-Allowed-Rate"), c.status, c.origin, c.rate)
		}
		allow := h.Get("Allow")
		if strings.Contains(allow, "POST") != c.allowsPost || strings.Contains(allow, "OPTIONS") != c.allowsOptions {
			t.Errorf("%s: Allow %q", c.name, allow)
		}
	}
	// The handshake needs no credentials and writes nothing.
	if got.count() != 0 {
		t.Errorf("%d messages written by handshakes", got.count())
	}
}

func TestCloudEventsConfigErrors(t *testing.T) {
	for name, c := range map[string]struct{ conf, want string }{
		"no origins": {`
endpoints:
  - { path: /e, provider: x, cloudevents: { enabled: true, allowed_origins: [ "${UNSET_ORIGIN_VARIABLE:}" ] }, auth: { allow_unauthenticated: true } }
`, "allowed_origins is empty"},
		"bad rate": {`
endpoints:
  - { path: /e, provider: x, cloudevents: { enabled: true, allowed_rate: "0" }, auth: { allow_unauthenticated: true } }
`, "must be * or a positive number"},
	} {
		t.Run(name, func(t *testing.T) {
			err := runConfigError(t, "webhook_server:\n"+indent(c.conf, "  "))
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}
