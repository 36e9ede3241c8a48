package archive

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func sampleRecord() Record {
	return Record{
		Version: RecordVersion, ReceivedAt: "2026-11-24T10:00:00.5Z", Provider: "thecity", Endpoint: "/webhooks/thecity",
		Source: "/webhooks/thecity", RemoteAddr: "127.0.0.1:1234", RequestID: "r1",
		Headers: map[string]string{"X-City-Webhook-Signature": "abc", "User-Agent": "x"},
		Body:    `{"webhook_object":"User","webhook_event":"destroy","id":1}`,
	}
}

func TestSeal(t *testing.T) {
	r := sampleRecord()
	r.SealWith([]byte("new"))
	if err := r.VerifySeal([][]byte{[]byte("old"), []byte("new")}); err != nil {
		t.Fatalf("rotated keys: %v", err)
	}
	if err := r.VerifySeal([][]byte{[]byte("other")}); !errors.Is(err, ErrBadSeal) {
		t.Fatalf("wrong key: %v", err)
	}
	for name, tamper := range map[string]func(*Record){
		"body":        func(r *Record) { r.Body = strings.Replace(r.Body, "1", "2", 1) },
		"header":      func(r *Record) { r.Headers["X-City-Webhook-Signature"] = "abd" },
		"new header":  func(r *Record) { r.Headers["X-Extra"] = "1" },
		"received_at": func(r *Record) { r.ReceivedAt = "2026-11-24T10:00:01Z" },
		"provider":    func(r *Record) { r.Provider = "controlshift" },
		"request id":  func(r *Record) { r.RequestID = "r2" },
		"shifted":     func(r *Record) { r.Endpoint, r.Source = r.Endpoint+"x", r.Source[1:] },
	} {
		c := sampleRecord()
		c.Headers = map[string]string{"X-City-Webhook-Signature": "abc", "User-Agent": "x"}
		c.SealWith([]byte("new"))
		tamper(&c)
		if err := c.VerifySeal([][]byte{[]byte("new")}); !errors.Is(err, ErrBadSeal) {
			t.Errorf("%s changed, seal still verifies (%v)", name, err)
		}
	}
	unsealed := sampleRecord()
	if err := unsealed.VerifySeal([][]byte{[]byte("new")}); !errors.Is(err, ErrNoSeal) {
		t.Errorf("unsealed: %v", err)
	}
}

func newTestReplay(t *testing.T, yaml string) *replay {
	t.Helper()
	conf, err := replaySpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReplay(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) }
	return r
}

func line(t *testing.T, r Record) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReplayRestoresTheDelivery(t *testing.T) {
	rec := sampleRecord()
	rec.SealWith([]byte("k"))
	out, err := newTestReplay(t, `seal_keys: [ "", "k" ]`).Process(context.Background(), service.NewMessage(line(t, rec)))
	if err != nil || len(out) != 1 {
		t.Fatalf("%v %d", err, len(out))
	}
	m := out[0]
	body, _ := m.AsBytes()
	if string(body) != rec.Body {
		t.Errorf("body %q", body)
	}
	for k, want := range map[string]string{
		"webhook_provider": "thecity", "webhook_endpoint": "/webhooks/thecity", "webhook_source": "/webhooks/thecity",
		"webhook_received_at": rec.ReceivedAt, "webhook_request_id": "r1", "webhook_remote_addr": "127.0.0.1:1234",
		"x-city-webhook-signature": "abc", "user-agent": "x", "webhook_replayed": "true", "webhook_replayed_at": "2026-11-25T00:00:00Z",
	} {
		if got, _ := m.MetaGet(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestReplayRefusesTamperedRecords(t *testing.T) {
	rec := sampleRecord()
	rec.SealWith([]byte("k"))
	rec.Body = strings.Replace(rec.Body, `"id":1`, `"id":666`, 1)
	msg := service.NewMessage(line(t, rec))
	_, err := newTestReplay(t, `seal_keys: [ k ]`).Process(context.Background(), msg)
	if err == nil || !strings.Contains(err.Error(), "r1") {
		t.Fatalf("tampered record replayed: %v", err)
	}
	if s, _ := msg.MetaGet("event_status"); s != "unauthenticated" {
		t.Errorf("event_status %q", s)
	}
	out, err := newTestReplay(t, `skip_seal_verification: true`).Process(context.Background(), service.NewMessage(line(t, rec)))
	if err != nil || len(out) != 1 {
		t.Errorf("skip_seal_verification did not replay: %v", err)
	}
	if _, err := newTestReplay(t, `seal_keys: [ k ]`).Process(context.Background(), service.NewMessage([]byte(`{"nope":1}`))); err == nil {
		t.Error("a line that is no record was accepted")
	}
}

func TestReplayFilters(t *testing.T) {
	rec := sampleRecord()
	rec.SealWith([]byte("k"))
	for conf, keep := range map[string]bool{
		`{seal_keys: [k]}`: true,
		`{seal_keys: [k], from: "2026-11-24T10:00:00Z", to: "2026-11-24T10:00:01Z"}`: true,
		`{seal_keys: [k], from: "2026-11-24T10:00:01Z"}`:                             false,
		`{seal_keys: [k], to: "2026-11-24T10:00:00.5Z"}`:                             false,
		`{seal_keys: [k], providers: [controlshift]}`:                                false,
		`{seal_keys: [k], providers: [""]}`:                                          true,
		`{seal_keys: [k], endpoints: [/webhooks/thecity]}`:                           true,
		`{seal_keys: [k], endpoints: [/other]}`:                                      false,
	} {
		out, err := newTestReplay(t, conf).Process(context.Background(), service.NewMessage(line(t, rec)))
		if err != nil || (len(out) == 1) != keep {
			t.Errorf("%s: kept %d (err %v), want kept=%v", conf, len(out), err, keep)
		}
	}
}

func TestReplayNeedsAKeyOrAnExplicitSkip(t *testing.T) {
	conf, _ := replaySpec().ParseYAML(`seal_keys: [ "" ]`, nil)
	if _, err := newReplay(conf, service.MockResources()); err == nil {
		t.Fatal("no key and no skip accepted")
	}
}
