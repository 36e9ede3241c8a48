// Package generic provides the generic_webhook processor: it turns the
// webhooks of any JSON-speaking provider into hookpipe events, with the id,
// type, subject and time named in YAML instead of Go, so a provider can be
// added to a pipeline by configuration alone.
package generic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/event"
	"github.com/hookpipe/hookpipe/plugins/timefmt"
)

const (
	fieldProvider       = "provider"
	fieldID             = "id"
	fieldType           = "type"
	fieldSubject        = "subject"
	fieldTime           = "time"
	fieldKnownTypes     = "known_types"
	fieldRequired       = "required"
	fieldLenient        = "lenient_json"
	fieldStrict         = "strict"
	fieldNormalizeTimes = "normalize_times"
)

func processorSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Parsing").
		Summary("Parses the JSON webhook of any provider, with its id, type, subject and time given as interpolations, validates it, and sets the `event_*` metadata that the CloudEvents mapping in `blobl/envelope.blobl` reads.").
		Description(`
The YAML counterpart of the provider processors (`+"`controlshift_webhook`"+`, `+"`thecity_webhook`"+`): pair it with the
`+"`webhook_server`"+` input's declarative `+"`auth.signature`"+` check and a provider is added without any Go code. It works
after any input, not only `+"`webhook_server`"+`.

The message becomes the parsed payload (numbers kept exact). The interpolations run on that payload and the message's
metadata: `+"`${! json(\"id\") }`"+` reads the body, `+"`${! meta(\"webhook-id\") }`"+` a header that the input copied into
metadata (list it in the input's `+"`metadata_headers`"+`). An interpolation that fails, yields nothing or yields `+"`null`"+`
(what `+"`json()`"+` and `+"`meta()`"+` give for something absent) counts as empty.

Metadata set: `+"`event_provider`"+`, `+"`event_id`"+`, `+"`event_type`"+`, `+"`event_resource`"+` and `+"`event_action`"+` (the type split
at its last dot: `+"`invoice.paid`"+` is resource `+"`invoice`"+`, action `+"`paid`"+`; a type without a dot is all resource),
`+"`event_subject`"+`, `+"`event_time`"+`, `+"`event_delivery_id`"+` (the id, when `+"`id`"+` gave one) and `+"`event_status`"+`:

- `+"`valid`"+`;
- `+"`unknown_type`"+`: `+"`known_types`"+` is set and the type is not in it;
- `+"`invalid`"+`: a path of `+"`required`"+` is missing or null (`+"`event_error`"+` names them);
- `+"`malformed`"+`: the body is not a JSON object, or `+"`type`"+` is empty. The message fails (route it with `+"`errored()`"+`)
  and keeps its raw bytes.

Unknown and invalid events are flagged, not dropped, so a config can route them to a dead-letter output; with
`+"`strict: true`"+` they fail the message instead.

The event id must be stable across the provider's retries: use the provider's delivery or event id. Without one
(`+"`id`"+` empty), the id is a hash of the provider name and the raw body, which a retry repeats byte for byte.`).
		Fields(
			service.NewStringField(fieldProvider).Description("The provider name: `event_provider`, and the middle of the CloudEvents type `org.<provider>.<type>`.").Example("stripe"),
			service.NewInterpolatedStringField(fieldID).Description("The event id, stable across retries. Empty: a hash of the raw body.").Examples(`${! json("id") }`, `${! meta("webhook-id") }`).Default(""),
			service.NewInterpolatedStringField(fieldType).Description("The event type. Empty makes the event `malformed`.").Examples(`${! json("type") }`, `${! meta("x-github-event") }`),
			service.NewInterpolatedStringField(fieldSubject).Description("The entity the event is about (CloudEvents `subject`). Empty: none.").Example(`customers/${! json("data.object.customer") }`).Default(""),
			service.NewInterpolatedStringField(fieldTime).Description("When the event occurred: RFC 3339 (any offset, normalized to UTC), RFC 1123 with a numeric zone, The City's format, or Unix seconds. Empty or unrecognized: the receive time (`webhook_received_at`).").Examples(`${! json("created") }`, `${! json("timestamp") }`).Default(""),
			service.NewStringListField(fieldKnownTypes).Description("The event types this provider documents. When set, other types get `event_status: unknown_type`.").Default([]string{}),
			service.NewStringListField(fieldRequired).Description("Dotted paths every event must have (not missing, not null), e.g. `data.object.id`.").Default([]string{}),
			service.NewBoolField(fieldLenient).Description("Accept non-strict JSON (`nil`, trailing commas, a missing comma between members).").Default(false).Advanced(),
			service.NewBoolField(fieldStrict).Description("Fail messages with an unknown type or a missing required path, instead of flagging them in `event_status`.").Default(false),
			service.NewBoolField(fieldNormalizeTimes).Description("Rewrite every timestamp string in the payload to RFC 3339 UTC (dates to `YYYY-MM-DD`).").Default(false).Advanced(),
		).
		Example("Stripe", "Stripe events carry their id, type and creation time in the body.", `
pipeline:
  processors:
    - generic_webhook:
        provider: stripe
        id: '${! json("id") }'
        type: '${! json("type") }'
        time: '${! json("created") }'
        required: [ data.object ]
    - mapping: 'from "blobl/envelope.blobl"'
`).
		Example("GitHub", "GitHub names the event and the delivery in headers, which the input keeps as metadata (`metadata_headers: [ X-GitHub-Event, X-GitHub-Delivery ]`).", `
pipeline:
  processors:
    - generic_webhook:
        provider: github
        id: '${! meta("x-github-delivery") }'
        # "pull_request.opened"; "push" for events without an action.
        type: '${! meta("x-github-event") + if json("action") != null { "." + json("action").string() } else { "" } }'
        subject: '${! json("repository.full_name").or("") }'
    - mapping: 'from "blobl/envelope.blobl"'
`)
}

func init() {
	err := service.RegisterProcessor("generic_webhook", processorSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
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

// Processor parses the webhooks of one provider as its config describes.
type Processor struct {
	provider                        string
	id, typ, subject, occurred      *service.InterpolatedString
	knownTypes                      map[string]bool
	required                        []string
	lenient, strict, normalizeTimes bool
	now                             func() time.Time
	mEvents                         *service.MetricCounter
}

func newProcessor(conf *service.ParsedConfig) (*Processor, error) {
	p := &Processor{now: time.Now}
	var err error
	if p.provider, err = conf.FieldString(fieldProvider); err != nil {
		return nil, err
	}
	if p.provider = strings.TrimSpace(p.provider); p.provider == "" {
		return nil, errors.New("generic_webhook: provider is empty")
	}
	if p.typ, err = conf.FieldInterpolatedString(fieldType); err != nil {
		return nil, err
	}
	if s, static := p.typ.Static(); static && s == "" {
		return nil, errors.New("generic_webhook: type is empty")
	}
	for name, dst := range map[string]**service.InterpolatedString{fieldID: &p.id, fieldSubject: &p.subject, fieldTime: &p.occurred} {
		v, err := conf.FieldInterpolatedString(name)
		if err != nil {
			return nil, err
		}
		if s, static := v.Static(); !static || s != "" {
			*dst = v
		}
	}
	known, err := conf.FieldStringList(fieldKnownTypes)
	if err != nil {
		return nil, err
	}
	if len(known) > 0 {
		p.knownTypes = make(map[string]bool, len(known))
		for _, k := range known {
			p.knownTypes[k] = true
		}
	}
	if p.required, err = conf.FieldStringList(fieldRequired); err != nil {
		return nil, err
	}
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
	ev, err := p.parse(msg, body)
	ev.SetMeta(msg)
	typeLabel := "unknown"
	if p.knownTypes[ev.Type] {
		typeLabel = ev.Type
	}
	p.mEvents.Incr(1, p.provider, typeLabel, ev.Status)
	// A malformed delivery reaches a dead-letter sink as it was received.
	if ev.Status == event.StatusMalformed {
		msg.SetBytes(body)
	}
	if err != nil {
		return nil, err
	}
	return service.MessageBatch{msg}, nil
}

// Close implements service.Processor.
func (p *Processor) Close(context.Context) error { return nil }

// parse reads one payload into msg (as structured content) and returns what
// it learned. The error is set when the message should fail: a malformed
// body always, an unknown or invalid event only in strict mode.
func (p *Processor) parse(msg *service.Message, body []byte) (event.Event, error) {
	ev := event.Event{Provider: p.provider}
	doc, err := event.DecodeMessage(msg, body, p.lenient)
	if err != nil {
		ev.Status, ev.Error = event.StatusMalformed, err.Error()
		return ev, err
	}
	if p.normalizeTimes {
		event.NormalizeTimes(doc)
	}
	msg.SetStructuredMut(doc)

	if ev.Type = p.eval(p.typ, msg); ev.Type == "" {
		ev.Status, ev.Error = event.StatusMalformed, "the event has no type"
		return ev, errors.New(ev.Error)
	}
	if i := strings.LastIndexByte(ev.Type, '.'); i > 0 && i < len(ev.Type)-1 {
		ev.Resource, ev.Action = ev.Type[:i], ev.Type[i+1:]
	} else {
		ev.Resource = ev.Type
	}
	if ev.DeliveryID = p.eval(p.id, msg); ev.DeliveryID != "" {
		ev.ID = ev.DeliveryID
	} else {
		ev.ID = event.BodyID(p.provider, body)
	}
	ev.Subject = p.eval(p.subject, msg)
	if ev.Time = occurredAt(p.eval(p.occurred, msg)); ev.Time == "" {
		received, _ := msg.MetaGet("webhook_received_at")
		ev.Time = event.ReceiveTime(received, p.now)
	}

	if p.knownTypes != nil && !p.knownTypes[ev.Type] {
		ev.Status, ev.Error = event.StatusUnknownType, fmt.Sprintf("event type %q is not in known_types of %s", ev.Type, p.provider)
	} else if missing := event.Missing(doc, p.required); len(missing) > 0 {
		ev.Status, ev.Error = event.StatusInvalid, fmt.Sprintf("%s is missing required fields: %s", ev.Type, strings.Join(missing, ", "))
	} else {
		ev.Status = event.StatusValid
		return ev, nil
	}
	if p.strict {
		return ev, errors.New(ev.Error)
	}
	return ev, nil
}

// eval resolves an optional interpolation; failures, "null" (what json()
// and meta() give for an absent value) and blanks are "".
func (p *Processor) eval(i *service.InterpolatedString, msg *service.Message) string {
	if i == nil {
		return ""
	}
	s, err := i.TryString(msg)
	if err != nil {
		return ""
	}
	if s = strings.TrimSpace(s); s == "null" {
		return ""
	}
	return s
}

// occurredAt normalizes a time given by the config: a date-time in one of
// the recognized formats, or Unix seconds. Anything else (a bare date
// included: it dates no instant) is "".
func occurredAt(v string) string {
	if v == "" {
		return ""
	}
	if t, kind, ok := timefmt.Parse(v); ok {
		if kind == timefmt.KindDateTime {
			return t.UTC().Format(time.RFC3339Nano)
		}
		return ""
	}
	if t, ok := timefmt.ParseEpoch(v); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return ""
}
