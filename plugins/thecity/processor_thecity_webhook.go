// Package thecity provides the thecity_webhook processor, which parses,
// verifies and validates The City's webhook payloads against the event
// catalog of The City's documentation.
package thecity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/auth"
	"github.com/hookpipe/hookpipe/plugins/event"
)

// Provider is the provider name of The City's events.
const Provider = "thecity"

const (
	fieldLenient        = "lenient_json"
	fieldStrict         = "strict"
	fieldNormalizeTimes = "normalize_times"
	fieldVerify         = "verify"
	fieldVerifyMetaKey  = "signature_metadata_key"
)

func processorSpec() *service.ConfigSpec {
	verifyFields := append([]*service.ConfigField{
		service.NewStringField(fieldVerifyMetaKey).Description("The metadata key holding the delivery's signature header value.").Default("x-city-webhook-signature"),
	}, auth.CitySignatureFields()...)
	return service.NewConfigSpec().
		Stable().
		Categories("Parsing").
		Summary("Parses a webhook of The City (`Object#event` payloads), validates it against the documented event catalog and sets the `event_*` metadata that the CloudEvents mapping in `blobl/envelope.blobl` reads.").
		Description(`
Works on the raw body of any input. Both the current keys `+"`webhook_object`"+` / `+"`webhook_event`"+` and the older
`+"`object`"+` / `+"`event`"+` are read. The message becomes the parsed payload (numbers kept exact) with every
timestamp (`+"`08/08/2012 09:17 PM (UTC)`"+`, RFC 3339 with offset, `+"`Tue, 16 Apr 2013 22:42:38 +0000`"+`, plain dates)
normalized to RFC 3339 UTC or `+"`YYYY-MM-DD`"+`, including the old and new values in `+"`changed`"+`.

Metadata set: `+"`event_provider`"+` (thecity), `+"`event_id`"+` (the `+"`webhook_id`"+`, else a hash of the raw body, which a
retry repeats), `+"`event_type`"+` (e.g. `+"`user.update`"+`), `+"`event_resource`"+`, `+"`event_action`"+`, `+"`event_subject`"+`
(e.g. `+"`users/946060874`"+`), `+"`event_time`"+` (`+"`webhook_timestamp`"+`, else `+"`webhook_event_occurred_at`"+`, else the
object's own time field, else the receive time), `+"`event_delivery_id`"+` and `+"`event_status`"+` (`+"`valid`"+`,
`+"`unknown_type`"+`, `+"`invalid`"+` with `+"`event_error`"+`). Unknown and invalid events are flagged, not dropped; with
`+"`strict: true`"+` they fail the message.

With `+"`verify`"+` the signature is checked again from metadata, for deliveries that come from an archive or a topic
rather than from the `+"`webhook_server`"+` input; a failed check always fails the message (`+"`event_status: unauthenticated`"+`).`).
		Fields(
			service.NewBoolField(fieldLenient).Description("Accept the non-strict JSON of The City's documented examples: `nil`, trailing commas, a missing comma between members.").Default(false),
			service.NewBoolField(fieldStrict).Description("Fail messages whose `Object#event` is not in the catalog or that miss a required field, instead of flagging them.").Default(false),
			service.NewBoolField(fieldNormalizeTimes).Description("Rewrite timestamps to RFC 3339 UTC (dates to `YYYY-MM-DD`).").Default(true),
			service.NewObjectField(fieldVerify, verifyFields...).Description("Verify the `X-City-Webhook-Signature` kept in metadata against the raw body. Verification is on when `secrets` is set; a list of unset variables is a config error, not a silent skip.").Optional(),
		).
		Example("Parse and map to CloudEvents", "", `
pipeline:
  processors:
    - thecity_webhook:
        lenient_json: true
    - mapping: 'from "blobl/envelope.blobl"'
`)
}

func init() {
	err := service.RegisterProcessor("thecity_webhook", processorSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
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

// Processor parses The City's webhooks.
type Processor struct {
	lenient, strict, normalizeTimes bool
	verifier                        *auth.CitySignature
	signatureKey                    string
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
	if auth.Configured(conf.Namespace(fieldVerify)) {
		v := conf.Namespace(fieldVerify)
		if p.signatureKey, err = v.FieldString(fieldVerifyMetaKey); err != nil {
			return nil, err
		}
		if p.verifier, err = auth.CitySignatureFromConfig(v); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Process implements service.Processor.
func (p *Processor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	body, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	if p.verifier != nil {
		sig, _ := msg.MetaGet(p.signatureKey)
		err := p.verifier.Verify(auth.Request{
			Header: func(string) string { return sig },
			Body:   body,
		})
		if err != nil {
			ev := event.Event{Provider: Provider, Status: event.StatusUnauthenticated, Error: "signature verification failed: " + err.Error()}
			ev.SetMeta(msg)
			p.mEvents.Incr(1, Provider, "unknown", ev.Status)
			return nil, errors.New(ev.Error)
		}
	}
	received, _ := msg.MetaGet("webhook_received_at")
	decoded, err := event.DecodeMessage(msg, body, p.lenient)
	ev, doc, err := p.parseDecoded(body, decoded, err, received)
	// Only catalogued types become label values, so the series stay bounded:
	// Parse reaches valid or invalid only for an Object#event in the catalog.
	typeLabel := "unknown"
	if ev.Status == event.StatusValid || ev.Status == event.StatusInvalid {
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
	object := event.String(doc["webhook_object"])
	if object == "" {
		object = event.String(doc["object"])
	}
	action := event.String(doc["webhook_event"])
	if action == "" {
		action = event.String(doc["event"])
	}
	if object == "" || action == "" {
		ev.Status, ev.Error = event.StatusMalformed, "payload has no webhook_object/webhook_event (or object/event)"
		return ev, nil, errors.New(ev.Error)
	}
	ev.Resource, ev.Action = lowerObject(object), action
	ev.Type = ev.Resource + "." + ev.Action

	ev.DeliveryID = event.String(doc["webhook_id"])
	if ev.DeliveryID != "" {
		ev.ID = ev.DeliveryID
	} else {
		ev.ID = event.BodyID(Provider, body)
	}

	// The delivery's own time, before normalization rewrites its format.
	ev.Time = event.OccurredAt(doc, []string{"webhook_timestamp", "webhook_event_occurred_at"})
	if p.normalizeTimes {
		event.NormalizeTimes(doc)
	}

	entry, known := Catalog[object+"#"+action]
	if !known {
		if ev.Time == "" {
			ev.Time = event.ReceiveTime(received, p.now)
		}
		ev.Status, ev.Error = event.StatusUnknownType, fmt.Sprintf("%s#%s is not in The City's catalog", object, action)
		if p.strict {
			return ev, doc, errors.New(ev.Error)
		}
		return ev, doc, nil
	}
	if id := event.String(event.Lookup(doc, entry.SubjectField)); id != "" {
		ev.Subject = entry.SubjectPrefix + "/" + id + entry.SubjectSuffix
	}
	if ev.Time == "" {
		ev.Time = event.OccurredAt(doc, entry.TimeFields)
	}
	if ev.Time == "" {
		ev.Time = event.ReceiveTime(received, p.now)
	}
	if missing := event.Missing(doc, entry.Required); len(missing) > 0 {
		ev.Status, ev.Error = event.StatusInvalid, fmt.Sprintf("%s is missing required fields: %s", entry.Section, strings.Join(missing, ", "))
		if p.strict {
			return ev, doc, errors.New(ev.Error)
		}
		return ev, doc, nil
	}
	ev.Status = event.StatusValid
	return ev, doc, nil
}
