// Package controlshift provides the controlshift_webhook processor, which
// parses and validates ControlShift Labs webhook payloads against the event
// catalog of ControlShift's documentation.
package controlshift

import (
	"context"
	"errors"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/event"
)

// Provider is the provider name of ControlShift Labs events.
const Provider = "controlshift"

const (
	fieldLenient        = "lenient_json"
	fieldStrict         = "strict"
	fieldNormalizeTimes = "normalize_times"
)

func processorSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Parsing").
		Summary("Parses a ControlShift Labs webhook (`{\"type\", \"data\", \"jid\"}`), validates it against the documented event catalog and sets the `event_*` metadata that the CloudEvents mapping in `blobl/envelope.blobl` reads.").
		Description(`
Works on the raw body of any input: the `+"`webhook_server`"+` input, a file of archived deliveries, a Kafka topic.
The message becomes the parsed payload (numbers kept exact) with:

- `+"`data.url`"+` of the bulk-data events HTML-unescaped (the document sends `+"`&amp;`"+`);
- every timestamp normalized to RFC 3339 UTC (unless `+"`normalize_times: false`"+`);
- nested objects (partnership or effort slugs under `+"`data.petition`"+`) kept as they are.

Metadata set: `+"`event_provider`"+` (controlshift), `+"`event_id`"+`, `+"`event_type`"+`, `+"`event_resource`"+`,
`+"`event_action`"+`, `+"`event_subject`"+`, `+"`event_time`"+`, `+"`event_delivery_id`"+` (the `+"`jid`"+`) and
`+"`event_status`"+`: `+"`valid`"+`, `+"`unknown_type`"+` (not in the catalog) or `+"`invalid`"+` (a required field is missing, see
`+"`event_error`"+`). Unknown and invalid events are flagged, not dropped, so a config can route them to a dead-letter
output; with `+"`strict: true`"+` they fail the message instead.

The event id is stable across the provider's retries and distinct across events: a `+"`jid`"+` names ControlShift's
background job and is reused across event types, so the id is a hash of provider, type and `+"`jid`"+`; a payload
without `+"`jid`"+` gets a hash of its raw bytes.

A body that is not a JSON object of this shape fails the message (`+"`event_status: malformed`"+`).`).
		Fields(
			service.NewBoolField(fieldLenient).Description("Accept non-strict JSON (`nil`, trailing commas, a missing comma between members).").Default(false).Advanced(),
			service.NewBoolField(fieldStrict).Description("Fail messages whose type is not in the catalog or that miss a required field, instead of flagging them in `event_status`.").Default(false),
			service.NewBoolField(fieldNormalizeTimes).Description("Rewrite timestamps in `data` to RFC 3339 UTC.").Default(true),
		).
		Example("Parse and map to CloudEvents", "", `
pipeline:
  processors:
    - controlshift_webhook: {}
    - mapping: 'from "blobl/envelope.blobl"'
`)
}

func init() {
	err := service.RegisterProcessor("controlshift_webhook", processorSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
		p, err := newProcessor(conf)
		if err != nil {
			return nil, err
		}
		p.mEvents = event.NewEventsCounter(mgr)
		return p, nil
	})
	if err != nil {
		panic(err)
	}
}

// Processor parses ControlShift webhooks.
type Processor struct {
	lenient, strict, normalizeTimes bool
	now                             func() time.Time
	mEvents                         *service.MetricCounter
}

func newProcessor(conf *service.ParsedConfig) (*Processor, error) {
	p := &Processor{now: time.Now}
	opts, err := event.ParsingOptionsFromConfig(conf)
	if err != nil {
		return nil, err
	}
	p.lenient, p.strict, p.normalizeTimes = opts.Lenient, opts.Strict, opts.NormalizeTimes
	return p, nil
}

// Process implements service.Processor.
func (p *Processor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	body, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	decoded, err := event.DecodeMessage(msg, body, p.lenient)
	ev, doc, err := p.parseDecoded(body, decoded, err, receivedAt(msg))
	// Only catalogued types become label values, so the series stay bounded.
	typeLabel := "unknown"
	if _, known := Catalog[ev.Type]; known {
		typeLabel = ev.Type
	}
	return ev.Finish(msg, doc, err, p.mEvents, typeLabel)
}

// Close implements service.Processor.
func (p *Processor) Close(context.Context) error { return nil }

// Parse reads one payload. The returned error is set when the message should
// fail: a malformed body always, an unknown or invalid event only in strict
// mode. The document is nil when the body could not be parsed.
func (p *Processor) Parse(body []byte, received string) (event.Event, map[string]any, error) {
	doc, err := event.Decode(body, p.lenient)
	return p.parseDecoded(body, doc, err, received)
}

// parseDecoded is Parse of a body already decoded into doc (or not, err).
func (p *Processor) parseDecoded(body []byte, doc map[string]any, err error, received string) (event.Event, map[string]any, error) {
	ev := event.Event{Provider: Provider}
	if err != nil {
		ev.Status, ev.Error = event.StatusMalformed, err.Error()
		return ev, nil, err
	}
	ev.Type = event.String(doc["type"])
	if ev.Type == "" {
		ev.Status, ev.Error = event.StatusMalformed, "payload has no type"
		return ev, nil, errors.New(ev.Error)
	}
	data, ok := doc["data"].(map[string]any)
	if !ok {
		ev.Status, ev.Error = event.StatusMalformed, "payload has no data object"
		return ev, nil, errors.New(ev.Error)
	}
	ev.DeliveryID = event.String(doc["jid"])
	if ev.DeliveryID != "" {
		ev.ID = event.HashID(Provider, ev.Type, ev.DeliveryID)
	} else {
		ev.ID = event.BodyID(Provider, body)
	}
	if p.normalizeTimes {
		event.NormalizeTimes(data)
	}

	entry, known := Catalog[ev.Type]
	if !known {
		ev.Status, ev.Error = event.StatusUnknownType, fmt.Sprintf("event type %q is not in the ControlShift catalog", ev.Type)
		if i := strings.LastIndexByte(ev.Type, '.'); i > 0 {
			ev.Resource, ev.Action = ev.Type[:i], ev.Type[i+1:]
		}
		ev.Time = event.ReceiveTime(received, p.now)
		if p.strict {
			return ev, doc, errors.New(ev.Error)
		}
		return ev, doc, nil
	}
	ev.Resource, ev.Action = entry.Resource, entry.Action
	if entry.BulkData {
		if u, ok := data["url"].(string); ok {
			data["url"] = html.UnescapeString(u)
		}
	}
	if id := event.String(event.Lookup(data, entry.SubjectField)); id != "" {
		ev.Subject = entry.SubjectPrefix + "/" + id
	}
	if ev.Time = event.OccurredAt(data, entry.TimeFields); ev.Time == "" {
		ev.Time = event.ReceiveTime(received, p.now)
	}

	if missing := event.Missing(data, entry.Required); len(missing) > 0 {
		ev.Status, ev.Error = event.StatusInvalid, fmt.Sprintf("%s is missing required data fields: %s", ev.Type, strings.Join(missing, ", "))
		if p.strict {
			return ev, doc, errors.New(ev.Error)
		}
		return ev, doc, nil
	}
	ev.Status = event.StatusValid
	return ev, doc, nil
}

func receivedAt(msg *service.Message) string {
	v, _ := msg.MetaGet("webhook_received_at")
	return v
}
