package generic

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/event"
)

const stripeConf = `
provider: stripe
id: '${! json("id") }'
type: '${! json("type") }'
subject: 'customers/${! json("data.object.customer") }'
time: '${! json("created") }'
known_types: [ invoice.paid, customer.created ]
required: [ data.object.id ]
`

// A Stripe event as its API reference shows one, trimmed; the amount is
// larger than a float64 holds exactly.
const stripeBody = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid","created":1686089970,` +
	`"data":{"object":{"id":"in_1NG8Dt2eZvKYlo2C","object":"invoice","customer":"cus_9s6XKzkNRiz8i3","amount_paid":90071992547409931}}}`

func newTestProcessor(t *testing.T, yaml string) *Processor {
	t.Helper()
	conf, err := processorSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessor(conf)
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	return p
}

func process(t *testing.T, p *Processor, body string, meta map[string]string) (*service.Message, error) {
	t.Helper()
	msg := service.NewMessage([]byte(body))
	for k, v := range meta {
		msg.MetaSetMut(k, v)
	}
	out, err := p.Process(context.Background(), msg)
	if err == nil && len(out) != 1 {
		t.Fatalf("%d messages out", len(out))
	}
	return msg, err
}

func metaOf(msg *service.Message) map[string]string {
	m := map[string]string{}
	_ = msg.MetaWalkMut(func(k string, v any) error {
		if strings.HasPrefix(k, "event_") {
			m[k], _ = v.(string)
		}
		return nil
	})
	return m
}

func assertMeta(t *testing.T, msg *service.Message, want map[string]string) {
	t.Helper()
	got := metaOf(msg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %q", k, got[k])
		}
	}
}

func TestStripeEvent(t *testing.T) {
	p := newTestProcessor(t, stripeConf)
	msg, err := process(t, p, stripeBody, map[string]string{"webhook_received_at": "2026-11-24T10:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	assertMeta(t, msg, map[string]string{
		event.MetaProvider: "stripe", event.MetaID: "evt_1NG8Du2eZvKYlo2CUI79vXWy", event.MetaDeliveryID: "evt_1NG8Du2eZvKYlo2CUI79vXWy",
		event.MetaType: "invoice.paid", event.MetaResource: "invoice", event.MetaAction: "paid",
		event.MetaSubject: "customers/cus_9s6XKzkNRiz8i3", event.MetaTime: "2023-06-06T22:19:30Z", event.MetaStatus: event.StatusValid,
	})
	b, _ := msg.AsBytes()
	if !strings.Contains(string(b), `"amount_paid":90071992547409931`) {
		t.Fatalf("numbers not kept exact: %s", b)
	}
}

func TestStatuses(t *testing.T) {
	p := newTestProcessor(t, stripeConf)
	received := map[string]string{"webhook_received_at": "2026-11-24T10:00:00.5Z"}
	for _, c := range []struct {
		name, body, status string
		fails              bool
	}{
		{"unknown type", `{"id":"evt_2","type":"charge.refunded","created":1686089970,"data":{"object":{"id":"ch_1"}}}`, event.StatusUnknownType, false},
		{"required path missing", `{"id":"evt_3","type":"invoice.paid","created":1686089970,"data":{"object":{}}}`, event.StatusInvalid, false},
		{"required path null", `{"id":"evt_4","type":"invoice.paid","data":{"object":{"id":null}}}`, event.StatusInvalid, false},
		{"no type", `{"id":"evt_5","data":{"object":{"id":"x"}}}`, event.StatusMalformed, true},
		{"null type", `{"id":"evt_5","type":null}`, event.StatusMalformed, true},
		{"not JSON", `{"id":`, event.StatusMalformed, true},
		{"not an object", `["invoice.paid"]`, event.StatusMalformed, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg, err := process(t, p, c.body, received)
			if (err != nil) != c.fails {
				t.Fatalf("error %v, want failure %v", err, c.fails)
			}
			m := metaOf(msg)
			if m[event.MetaStatus] != c.status || (c.status != event.StatusValid && m[event.MetaError] == "") {
				t.Fatalf("meta %v, want status %s with an error", m, c.status)
			}
			if c.status == event.StatusMalformed {
				if b, _ := msg.AsBytes(); string(b) != c.body {
					t.Fatalf("a malformed delivery must keep its raw bytes, got %s", b)
				}
			}
		})
	}

	strict := newTestProcessor(t, stripeConf+"strict: true\n")
	if _, err := process(t, strict, `{"id":"evt_2","type":"charge.refunded","data":{"object":{"id":"ch_1"}}}`, nil); err == nil {
		t.Error("strict: unknown type passed")
	}
	if _, err := process(t, strict, `{"id":"evt_3","type":"invoice.paid","data":{"object":{}}}`, nil); err == nil {
		t.Error("strict: invalid event passed")
	}
}

func TestIDAndTimeFallbacks(t *testing.T) {
	p := newTestProcessor(t, `
provider: acme
id: '${! json("id") }'
type: '${! json("type") }'
time: '${! json("timestamp") }'
`)
	received := map[string]string{"webhook_received_at": "2026-11-24T10:00:00.25Z"}
	for _, c := range []struct{ body, id, deliveryID, time string }{
		{`{"id":"a-1","type":"x.y","timestamp":"2022-11-03T20:26:10.344522Z"}`, "a-1", "a-1", "2022-11-03T20:26:10.344522Z"},
		{`{"id":"a-2","type":"x.y","timestamp":"2015-08-03T12:38:46-04:00"}`, "a-2", "a-2", "2015-08-03T16:38:46Z"},
		{`{"id":7,"type":"x.y","timestamp":"Tue, 16 Apr 2013 22:42:38 +0000"}`, "7", "7", "2013-04-16T22:42:38Z"},
		// No id: a hash of the raw body; an unusable time: the receive time.
		{`{"type":"x.y","timestamp":"yesterday"}`, event.BodyID("acme", []byte(`{"type":"x.y","timestamp":"yesterday"}`)), "", "2026-11-24T10:00:00.25Z"},
		{`{"id":null,"type":"x.y","timestamp":"2013-04-17"}`, event.BodyID("acme", []byte(`{"id":null,"type":"x.y","timestamp":"2013-04-17"}`)), "", "2026-11-24T10:00:00.25Z"},
		{`{"id":" ","type":"x.y"}`, event.BodyID("acme", []byte(`{"id":" ","type":"x.y"}`)), "", "2026-11-24T10:00:00.25Z"},
	} {
		msg, err := process(t, p, c.body, received)
		if err != nil {
			t.Fatal(err)
		}
		m := metaOf(msg)
		if m[event.MetaID] != c.id || m[event.MetaDeliveryID] != c.deliveryID || m[event.MetaTime] != c.time {
			t.Errorf("%s: id %q delivery %q time %q; want %q %q %q", c.body, m[event.MetaID], m[event.MetaDeliveryID], m[event.MetaTime], c.id, c.deliveryID, c.time)
		}
	}
	// Without webhook_received_at, the processor's clock.
	msg, _ := process(t, p, `{"type":"x.y"}`, nil)
	if got := metaOf(msg)[event.MetaTime]; got != "2026-01-02T03:04:05Z" {
		t.Errorf("time without receive time: %s", got)
	}
}

func TestHeadersFromMetadata(t *testing.T) {
	p := newTestProcessor(t, `
provider: github
id: '${! meta("x-github-delivery") }'
type: '${! meta("x-github-event") + if json("action") != null { "." + json("action").string() } else { "" } }'
subject: '${! json("repository.full_name") }'
`)
	meta := map[string]string{"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "x-github-event": "pull_request"}
	msg, err := process(t, p, `{"action":"opened","number":1,"repository":{"full_name":"octo/hello"}}`, meta)
	if err != nil {
		t.Fatal(err)
	}
	m := metaOf(msg)
	if m[event.MetaType] != "pull_request.opened" || m[event.MetaResource] != "pull_request" || m[event.MetaAction] != "opened" ||
		m[event.MetaID] != meta["x-github-delivery"] || m[event.MetaSubject] != "octo/hello" || m[event.MetaStatus] != event.StatusValid {
		t.Fatalf("pull_request: %v", m)
	}
	meta["x-github-event"] = "push"
	msg, _ = process(t, p, `{"ref":"refs/heads/main"}`, meta)
	if m := metaOf(msg); m[event.MetaType] != "push" || m[event.MetaResource] != "push" || m[event.MetaAction] != "" || m[event.MetaSubject] != "" {
		t.Fatalf("push: %v", m)
	}
	delete(meta, "x-github-event")
	if _, err := process(t, p, `{"action":"opened"}`, meta); err == nil {
		t.Fatal("an event without its type header passed")
	}
}

func TestLenientJSON(t *testing.T) {
	body := `{"type":"a.b","x":nil,"y":[1,2,],}`
	if _, err := process(t, newTestProcessor(t, "provider: p\ntype: '${! json(\"type\") }'\n"), body, nil); err == nil {
		t.Fatal("strict JSON accepted nil")
	}
	msg, err := process(t, newTestProcessor(t, "provider: p\ntype: '${! json(\"type\") }'\nlenient_json: true\n"), body, nil)
	if err != nil || metaOf(msg)[event.MetaType] != "a.b" {
		t.Fatalf("lenient: %v %v", err, metaOf(msg))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, yaml := range []string{
		"provider: ''\ntype: x\n",
		"provider: p\ntype: ''\n",
	} {
		conf, err := processorSpec().ParseYAML(yaml, nil)
		if err != nil {
			continue
		}
		if _, err := newProcessor(conf); err == nil {
			t.Errorf("accepted %q", yaml)
		}
	}
}

// The processor's metadata, through blobl/envelope.blobl, is a valid
// CloudEvent whose data is the payload.
func TestEnvelope(t *testing.T) {
	src, err := os.ReadFile("../../blobl/envelope.blobl")
	if err != nil {
		t.Fatal(err)
	}
	exec, err := bloblang.Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	p := newTestProcessor(t, stripeConf)
	msg, err := process(t, p, stripeBody, map[string]string{"webhook_source": "/webhooks/stripe", "webhook_received_at": "2026-11-24T10:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := msg.BloblangQuery(exec)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := out.AsBytes()
	var ev cloudevents.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	if ev.ID() != "evt_1NG8Du2eZvKYlo2CUI79vXWy" || ev.Type() != "org.stripe.invoice.paid" || ev.Source() != "/webhooks/stripe" ||
		ev.Subject() != "customers/cus_9s6XKzkNRiz8i3" || !ev.Time().Equal(time.Unix(1686089970, 0)) {
		t.Fatalf("envelope: %s", b)
	}
	var data map[string]any
	if err := json.Unmarshal(ev.Data(), &data); err != nil || data["id"] != "evt_1NG8Du2eZvKYlo2CUI79vXWy" || data["object"] != "event" {
		t.Fatalf("data is not the payload: %s", ev.Data())
	}
	if !strings.Contains(string(ev.Data()), "90071992547409931") {
		t.Fatalf("data lost number precision: %s", ev.Data())
	}
}

func BenchmarkProcess(b *testing.B) {
	conf, _ := processorSpec().ParseYAML(stripeConf, nil)
	p, err := newProcessor(conf)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(stripeBody)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Process(context.Background(), service.NewMessage(body)); err != nil {
			b.Fatal(err)
		}
	}
}
