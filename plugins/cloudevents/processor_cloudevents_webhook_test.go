package cloudevents

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/event"
)

func newTestProcessor(strict bool) *Processor {
	return &Processor{strict: strict, now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
}

const structuredBody = `{"specversion":"1.0","id":"A-1","source":"https://shop.example.com/orders","type":"com.example.order.created",` +
	`"subject":"orders/42","time":"2026-11-24T10:30:00.5+01:00","datacontenttype":"application/json","tenant":"acme","priority":3,` +
	`"data":{"order":42,"total":19.90000000000000000001}}`

func TestStructured(t *testing.T) {
	ev, doc, err := newTestProcessor(false).Parse(Delivery{Body: []byte(structuredBody), ContentType: "application/cloudevents+json; charset=utf-8", Provider: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	want := event.Event{
		Provider: "shop", ID: event.HashID(Provider, "https://shop.example.com/orders", "A-1"),
		Type: "com.example.order.created", Subject: "orders/42", Time: "2026-11-24T09:30:00.5Z",
		DeliveryID: "A-1", Status: event.StatusValid,
	}
	if ev != want {
		t.Errorf("event %+v\nwant  %+v", ev, want)
	}
	if doc["time"] != "2026-11-24T09:30:00.5Z" || doc["tenant"] != "acme" || doc["priority"] != json.Number("3") {
		t.Errorf("document %v", doc)
	}
	// Numbers stay exact.
	b, _ := json.Marshal(doc["data"])
	if string(b) != `{"order":42,"total":19.90000000000000000001}` {
		t.Errorf("data %s", b)
	}
	// The document is a valid CloudEvent to an independent reader.
	raw, _ := json.Marshal(doc)
	var read ce.Event
	if err := json.Unmarshal(raw, &read); err != nil {
		t.Fatal(err)
	}
	if err := read.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestBinary(t *testing.T) {
	d := Delivery{
		Body:        []byte(`{"order":42}`),
		ContentType: "application/json",
		Headers: map[string]string{
			"specversion": "1.0", "id": "A-1", "source": "https://shop.example.com/orders",
			"type": "com.example.order.created", "time": "2026-11-24T10:30:00Z",
			"subject": "caf%C3%A9%20orders%2F1", "tenant": "acme",
		},
		ReceivedAt: "2026-11-24T11:00:00Z",
	}
	ev, doc, err := newTestProcessor(false).Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Status != event.StatusValid || ev.Provider != Provider || ev.ID != event.HashID(Provider, "https://shop.example.com/orders", "A-1") {
		t.Errorf("event %+v", ev)
	}
	if ev.Subject != "café orders/1" || doc["subject"] != "café orders/1" {
		t.Errorf("percent-encoded subject read as %q", ev.Subject)
	}
	if doc["datacontenttype"] != "application/json" || doc["tenant"] != "acme" {
		t.Errorf("document %v", doc)
	}
	if data, ok := doc["data"].(map[string]any); !ok || data["order"] != json.Number("42") {
		t.Errorf("data %#v", doc["data"])
	}

	// Data that is not JSON is kept as data_base64.
	d.ContentType, d.Body = "application/octet-stream", []byte{0xff, 0x00, 0x01}
	_, doc, _ = newTestProcessor(false).Parse(d)
	if doc["data_base64"] != "/wAB" || doc["data"] != nil {
		t.Errorf("binary data: %v", doc)
	}
}

// The id is stable across retries and sources: the same (source, id) is one
// event, the same id from another source another.
func TestEventID(t *testing.T) {
	p := newTestProcessor(false)
	a, _, _ := p.Parse(Delivery{Body: []byte(structuredBody)})
	again, _, _ := p.Parse(Delivery{Body: []byte(strings.Replace(structuredBody, `"tenant":"acme"`, `"tenant":"acme2"`, 1))})
	other, _, _ := p.Parse(Delivery{Body: []byte(strings.Replace(structuredBody, "shop.example.com", "billing.example.com", 1))})
	if a.ID != again.ID {
		t.Error("a retry of the same source and id got another event id")
	}
	if a.ID == other.ID {
		t.Error("the same id from two sources collapsed")
	}
}

func TestInvalidEvents(t *testing.T) {
	for name, c := range map[string]struct {
		body string
		want string
	}{
		"no specversion":      {`{"id":"1","source":"/s","type":"t"}`, "specversion is missing"},
		"old specversion":     {`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, `specversion "0.3" is not supported`},
		"no id":               {`{"specversion":"1.0","source":"/s","type":"t"}`, "id is missing"},
		"empty source":        {`{"specversion":"1.0","id":"1","source":"","type":"t"}`, "source is missing"},
		"numeric type":        {`{"specversion":"1.0","id":"1","source":"/s","type":7}`, "type is missing or not a non-empty string"},
		"bad time":            {`{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}`, "time is not an RFC 3339 timestamp"},
		"relative dataschema": {`{"specversion":"1.0","id":"1","source":"/s","type":"t","dataschema":"schema.json"}`, "dataschema is not an absolute URI"},
		"upper-case name":     {`{"specversion":"1.0","id":"1","source":"/s","type":"t","traceParent":"x"}`, `attribute name "traceParent"`},
		"object attribute":    {`{"specversion":"1.0","id":"1","source":"/s","type":"t","meta":{"a":1}}`, "attribute meta is not a string, number or boolean"},
		"data twice":          {`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{},"data_base64":"AA=="}`, "both data and data_base64"},
		"source not a URI":    {`{"specversion":"1.0","id":"1","source":"%zz","type":"t"}`, "source is not a URI reference"},
	} {
		t.Run(name, func(t *testing.T) {
			ev, doc, err := newTestProcessor(false).Parse(Delivery{Body: []byte(c.body), ReceivedAt: "2026-11-24T11:00:00Z"})
			if err != nil || doc == nil {
				t.Fatalf("an invalid event failed the message (%v) instead of being flagged", err)
			}
			if ev.Status != event.StatusInvalid || !strings.Contains(ev.Error, c.want) {
				t.Fatalf("status %s, error %q; want invalid with %q", ev.Status, ev.Error, c.want)
			}
			if ev.ID == "" || ev.Time == "" {
				t.Errorf("an invalid event needs an id and a time for its dead letter: %+v", ev)
			}
			if _, _, err := newTestProcessor(true).Parse(Delivery{Body: []byte(c.body)}); err == nil {
				t.Error("strict mode did not fail it")
			}
		})
	}
	// Null attributes are absent, not invalid.
	ev, doc, _ := newTestProcessor(false).Parse(Delivery{Body: []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,"data":null}`)})
	if ev.Status != event.StatusValid {
		t.Errorf("null subject: %s %s", ev.Status, ev.Error)
	}
	if _, ok := doc["subject"]; ok {
		t.Error("a null attribute was kept")
	}
}

func TestMalformed(t *testing.T) {
	for name, d := range map[string]Delivery{
		"not JSON":      {Body: []byte(`{"specversion":`)},
		"not an object": {Body: []byte(`["a"]`), ContentType: StructuredMediaType},
		"batch":         {Body: []byte(`[{}]`), ContentType: BatchMediaType},
		"duplicate key": {Body: []byte(`{"id":"1","id":"2"}`)},
	} {
		ev, doc, err := newTestProcessor(false).Parse(d)
		if err == nil || ev.Status != event.StatusMalformed || doc != nil {
			t.Errorf("%s: status %s, err %v", name, ev.Status, err)
		}
	}
}

// Through the engine: metadata in, event_* metadata and the structured
// event out, from binary-mode metadata as a replayed archive sets it.
func TestProcessorOnMessage(t *testing.T) {
	conf, err := processorSpec().ParseYAML(`strict: false`, nil)
	if err != nil {
		t.Fatal(err)
	}
	strict, _ := conf.FieldBool(fieldStrict)
	p := &Processor{strict: strict, now: time.Now, mEvents: service.MockResources().Metrics().NewCounter("webhook_events_total", "provider", "type", "status")}
	msg := service.NewMessage([]byte(`{"n":1}`))
	for k, v := range map[string]string{
		"ce-specversion": "1.0", "ce-id": "x-1", "ce-source": "/sensors/7", "ce-type": "com.example.reading",
		"content-type": "application/json", "webhook_provider": "sensors", "webhook_received_at": "2026-11-24T11:00:00.123Z",
	} {
		msg.MetaSetMut(k, v)
	}
	out, err := p.Process(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	m := out[0]
	for k, want := range map[string]string{
		"event_provider": "sensors", "event_type": "com.example.reading", "event_status": "valid",
		"event_delivery_id": "x-1", "event_time": "2026-11-24T11:00:00.123Z", "event_format": "cloudevents",
		"event_id": event.HashID(Provider, "/sensors/7", "x-1"),
	} {
		if v, _ := m.MetaGet(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	raw, _ := m.AsBytes()
	var read ce.Event
	if err := json.Unmarshal(raw, &read); err != nil || read.Validate() != nil || read.ID() != "x-1" {
		t.Errorf("content %s: %v", raw, err)
	}
}
