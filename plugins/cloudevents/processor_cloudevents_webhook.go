// Package cloudevents provides the cloudevents_webhook processor, which reads
// a CloudEvent delivered over HTTP in binary or structured mode, validates it
// against the CloudEvents 1.0 specification and sets the event_* metadata the
// envelope mapping reads, and the names of the CloudEvents HTTP binding that
// the webhook_server input shares with it.
package cloudevents

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/event"
)

// Provider is the provider name of CloudEvents when the message does not
// name one (webhook_provider).
const Provider = "cloudevents"

// Names of the CloudEvents HTTP protocol binding.
const (
	// StructuredMediaType marks a request whose body is the whole event.
	StructuredMediaType = "application/cloudevents+json"
	// BatchMediaType marks a request whose body is an array of events.
	BatchMediaType = "application/cloudevents-batch+json"
	// HeaderPrefix starts the header of each attribute in binary mode, in
	// the lower case that metadata keys use.
	HeaderPrefix = "ce-"
	// MetaContentType is the metadata key of the request's Content-Type.
	MetaContentType = "content-type"
	// MetaFormat is set to "cloudevents" on every message this processor
	// handled, for the envelope mapping.
	MetaFormat = "event_format"
)

// The modes of the HTTP binding.
const (
	ModeStructured = "structured"
	ModeBinary     = "binary"
)

// Mode says how a request carries its event, from its media type (the
// Content-Type without parameters, lower case) and whether it has a
// ce-specversion header: ModeStructured, ModeBinary, or "" for a request
// that carries no event.
func Mode(mediaType string, hasSpecVersion bool) string {
	switch {
	case mediaType == StructuredMediaType:
		return ModeStructured
	case hasSpecVersion:
		return ModeBinary
	}
	return ""
}

const fieldStrict = "strict"

func processorSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Parsing").
		Summary("Reads a CloudEvent received over HTTP, in binary or structured mode, validates it against CloudEvents 1.0 and sets the `event_*` metadata that the envelope mapping in `blobl/envelope.blobl` reads.").
		Description(`
Works after the `+"`webhook_server`"+` input on an endpoint with `+"`cloudevents.enabled`"+`, and on any other input whose
messages are structured-mode events (a file, a topic) or carry the binary-mode headers as metadata (a replayed archive).

- **Structured mode** (`+"`content-type`"+` metadata `+"`application/cloudevents+json`"+`, or no `+"`ce-specversion`"+` metadata): the
  body is the event.
- **Binary mode** (`+"`ce-specversion`"+` metadata): each `+"`ce-<name>`"+` metadata value is the attribute `+"`<name>`"+`
  (percent-decoded, as the HTTP binding encodes it), `+"`content-type`"+` is `+"`datacontenttype`"+`, and the body is
  `+"`data`"+`: parsed when it is JSON, else kept as `+"`data_base64`"+`.

The message becomes the event in structured form: `+"`specversion`"+`, `+"`id`"+`, `+"`source`"+`, `+"`type`"+`, the optional
attributes and extensions as sent (numbers kept exact), `+"`time`"+` normalized to RFC 3339 UTC, and `+"`data`"+` or
`+"`data_base64`"+`.

Checks: `+"`specversion`"+` is `+"`1.0`"+`; `+"`id`"+`, `+"`source`"+` and `+"`type`"+` are non-empty strings; `+"`source`"+` is a URI
reference; `+"`time`"+`, when present, is an RFC 3339 timestamp; attribute names are lower-case letters and digits;
attribute values are strings, numbers or booleans; not both `+"`data`"+` and `+"`data_base64`"+`. An event that fails one
is flagged `+"`event_status: invalid`"+` with the reasons in `+"`event_error`"+` (or fails the message with `+"`strict: true`"+`);
a body that is not a JSON object in structured mode, or a batch, fails the message (`+"`event_status: malformed`"+`).

Metadata set: `+"`event_provider`"+` (the `+"`webhook_provider`"+` metadata, else `+"`cloudevents`"+`), `+"`event_id`"+`,
`+"`event_type`"+` (the event's `+"`type`"+`), `+"`event_subject`"+`, `+"`event_time`"+` (its `+"`time`"+`, else the receive time),
`+"`event_delivery_id`"+` (its `+"`id`"+`), `+"`event_status`"+`, `+"`event_error`"+` and `+"`event_format`"+` (`+"`cloudevents`"+`).

The event id is a hash of `+"`source`"+` and `+"`id`"+`: the specification makes that pair unique per event, and a sender's
retry repeats it, so retries collapse and two senders' ids never collide. An event missing either gets a hash of its
attributes and data.`).
		Fields(
			service.NewBoolField(fieldStrict).Description("Fail events that break the specification instead of flagging them in `event_status`.").Default(false),
		).
		Example("Receive CloudEvents and map them to the envelope", "", `
pipeline:
  processors:
    - cloudevents_webhook: {}
    - mapping: 'from "blobl/envelope.blobl"'
`)
}

func init() {
	err := service.RegisterProcessor("cloudevents_webhook", processorSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
		p := &Processor{now: time.Now}
		var err error
		if p.strict, err = conf.FieldBool(fieldStrict); err != nil {
			return nil, err
		}
		p.mEvents = mgr.Metrics().NewCounter("webhook_events_total", "provider", "type", "status")
		return p, nil
	})
	if err != nil {
		panic(err)
	}
}

// Processor reads CloudEvents.
type Processor struct {
	strict  bool
	now     func() time.Time
	mEvents *service.MetricCounter
}

// Delivery is what Parse reads: the body and the metadata of one message.
type Delivery struct {
	Body []byte
	// ContentType is the request's Content-Type ("" when unknown).
	ContentType string
	// Headers holds the binary-mode attributes: the ce-* metadata, keyed by
	// the attribute name (the key without its ce- prefix), values as sent.
	Headers map[string]string
	// Provider is the webhook_provider metadata ("" when unknown).
	Provider string
	// ReceivedAt is the webhook_received_at metadata.
	ReceivedAt string
}

// Process implements service.Processor.
func (p *Processor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	body, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	d := Delivery{Body: body}
	d.ContentType, _ = msg.MetaGet(MetaContentType)
	d.Provider, _ = msg.MetaGet("webhook_provider")
	d.ReceivedAt, _ = msg.MetaGet("webhook_received_at")
	_ = msg.MetaWalk(func(k, v string) error {
		if name, ok := strings.CutPrefix(k, HeaderPrefix); ok && name != "" {
			if d.Headers == nil {
				d.Headers = map[string]string{}
			}
			d.Headers[name] = v
		}
		return nil
	})
	ev, doc, err := p.Parse(d)
	ev.SetMeta(msg)
	msg.MetaSetMut(MetaFormat, "cloudevents")
	// Event types are the sender's: one label value keeps the series bounded.
	p.mEvents.Incr(1, ev.Provider, "cloudevent", ev.Status)
	if doc != nil {
		msg.SetStructuredMut(doc)
	}
	if err != nil {
		return nil, err
	}
	return service.MessageBatch{msg}, nil
}

// Close implements service.Processor.
func (p *Processor) Close(context.Context) error { return nil }

// Parse reads one delivery. The returned error is set when the message
// should fail: a malformed delivery always, an invalid event only in strict
// mode. The document (the event in structured form) is nil when the delivery
// could not be read.
func (p *Processor) Parse(d Delivery) (event.Event, map[string]any, error) {
	ev := event.Event{Provider: d.Provider}
	if ev.Provider == "" {
		ev.Provider = Provider
	}
	mediaType := ""
	if d.ContentType != "" {
		if mt, _, err := mime.ParseMediaType(d.ContentType); err == nil {
			mediaType = mt
		}
	}
	if mediaType == BatchMediaType {
		ev.Status, ev.Error = event.StatusMalformed, "batched CloudEvents are not supported; send one event per request"
		return ev, nil, errors.New(ev.Error)
	}
	_, hasSpecVersion := d.Headers["specversion"]
	var doc map[string]any
	if Mode(mediaType, hasSpecVersion) == ModeBinary {
		doc = binaryEvent(d, mediaType)
	} else {
		var err error
		if doc, err = event.Decode(d.Body, false); err != nil {
			ev.Status, ev.Error = event.StatusMalformed, "structured CloudEvent: "+err.Error()
			return ev, nil, errors.New(ev.Error)
		}
	}

	problems := validate(doc)
	id, _ := doc["id"].(string)
	source, _ := doc["source"].(string)
	ev.Type, _ = doc["type"].(string)
	ev.Subject, _ = doc["subject"].(string)
	ev.DeliveryID = id
	if id != "" && source != "" {
		ev.ID = event.HashID(Provider, source, id)
	} else {
		canonical, _ := json.Marshal(doc)
		ev.ID = event.BodyID(Provider, canonical)
	}
	if ts, ok := doc["time"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			ev.Time = t.UTC().Format(time.RFC3339Nano)
			doc["time"] = ev.Time
		}
	}
	if ev.Time == "" {
		ev.Time = event.ReceiveTime(d.ReceivedAt, p.now)
	}
	if len(problems) > 0 {
		ev.Status, ev.Error = event.StatusInvalid, "not a valid CloudEvent: "+strings.Join(problems, "; ")
		if p.strict {
			return ev, doc, errors.New(ev.Error)
		}
		return ev, doc, nil
	}
	ev.Status = event.StatusValid
	return ev, doc, nil
}

// binaryEvent builds the structured form of a binary-mode delivery.
func binaryEvent(d Delivery, mediaType string) map[string]any {
	doc := make(map[string]any, len(d.Headers)+2)
	for name, v := range d.Headers {
		// The binding percent-encodes what a header cannot carry.
		if dec, err := url.PathUnescape(v); err == nil {
			v = dec
		}
		doc[name] = v
	}
	if d.ContentType != "" {
		doc["datacontenttype"] = d.ContentType
	}
	if len(d.Body) == 0 {
		return doc
	}
	if isJSON(mediaType) {
		if v, err := decodeValue(d.Body); err == nil {
			doc["data"] = v
			return doc
		}
	}
	doc["data_base64"] = base64.StdEncoding.EncodeToString(d.Body)
	return doc
}

// isJSON reports whether data of this media type is JSON; none given means
// JSON, as the specification's JSON format assumes.
func isJSON(mediaType string) bool {
	return mediaType == "" || mediaType == "application/json" || mediaType == "text/json" || strings.HasSuffix(mediaType, "+json")
}

// decodeValue parses any JSON value, numbers kept exact.
func decodeValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// validate checks an event in structured form against CloudEvents 1.0 and
// returns what is wrong with it. Null attributes are dropped first: the JSON
// format reads them as absent.
func validate(doc map[string]any) []string {
	var problems []string
	for k, v := range doc {
		if v == nil && k != "data" {
			delete(doc, k)
		}
	}
	switch v := doc["specversion"].(type) {
	case nil:
		problems = append(problems, "specversion is missing")
	case string:
		if v != "1.0" {
			problems = append(problems, fmt.Sprintf("specversion %q is not supported (1.0 is)", v))
		}
	default:
		problems = append(problems, "specversion is not a string")
	}
	for _, name := range []string{"id", "source", "type"} {
		if s, ok := doc[name].(string); !ok || s == "" {
			problems = append(problems, name+" is missing or not a non-empty string")
		}
	}
	if s, ok := doc["source"].(string); ok && s != "" {
		if _, err := url.Parse(s); err != nil {
			problems = append(problems, "source is not a URI reference")
		}
	}
	for _, name := range []string{"subject", "datacontenttype", "dataschema", "time"} {
		if v, ok := doc[name]; ok {
			if _, isString := v.(string); !isString {
				problems = append(problems, name+" is not a string")
			}
		}
	}
	if s, ok := doc["time"].(string); ok {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			problems = append(problems, "time is not an RFC 3339 timestamp")
		}
	}
	if s, ok := doc["dataschema"].(string); ok {
		if u, err := url.Parse(s); err != nil || !u.IsAbs() {
			problems = append(problems, "dataschema is not an absolute URI")
		}
	}
	_, hasData := doc["data"]
	if b64, ok := doc["data_base64"]; ok {
		if hasData {
			problems = append(problems, "both data and data_base64 are present")
		}
		if s, isString := b64.(string); !isString {
			problems = append(problems, "data_base64 is not a string")
		} else if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			problems = append(problems, "data_base64 is not base64")
		}
	}
	names := make([]string, 0, len(doc))
	for k := range doc {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k == "data" || k == "data_base64" {
			continue
		}
		if !attributeName(k) {
			problems = append(problems, fmt.Sprintf("attribute name %q is not lower-case letters and digits", k))
		}
		switch doc[k].(type) {
		case string, bool, json.Number:
		default:
			problems = append(problems, fmt.Sprintf("attribute %s is not a string, number or boolean", k))
		}
	}
	return problems
}

func attributeName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
