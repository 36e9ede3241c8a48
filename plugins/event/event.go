// Package event holds what the provider processors share: the metadata keys
// they set on a parsed webhook, its stable id, its validation status and the
// decoding and time normalization of a payload.
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Jeffail/gabs/v2"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/jsonread"
	"github.com/hookpipe/hookpipe/plugins/timefmt"
)

// Metadata keys set by the provider processors.
const (
	MetaProvider   = "event_provider"
	MetaID         = "event_id"
	MetaType       = "event_type"
	MetaResource   = "event_resource"
	MetaAction     = "event_action"
	MetaSubject    = "event_subject"
	MetaTime       = "event_time"
	MetaDeliveryID = "event_delivery_id"
	MetaStatus     = "event_status"
	MetaError      = "event_error"
)

// Validation statuses, in event_status.
const (
	// StatusValid is a known event type with every field its catalog entry requires.
	StatusValid = "valid"
	// StatusUnknownType is an event type missing from the catalog.
	StatusUnknownType = "unknown_type"
	// StatusInvalid is a known event type missing a required field.
	StatusInvalid = "invalid"
	// StatusMalformed is a body that is not a JSON object of the provider's shape.
	StatusMalformed = "malformed"
	// StatusUnauthenticated is a body whose signature did not verify.
	StatusUnauthenticated = "unauthenticated"
)

// Event is what a provider processor learned about one delivery.
type Event struct {
	Provider   string
	ID         string
	Type       string
	Resource   string
	Action     string
	Subject    string
	Time       string
	DeliveryID string
	Status     string
	Error      string
}

// SetMeta writes the event's fields into the message metadata. Empty fields
// are left out so a mapping can tell absent from empty.
func (e *Event) SetMeta(m *service.Message) {
	set := func(k, v string) {
		if v != "" {
			m.MetaSetMut(k, v)
		}
	}
	set(MetaProvider, e.Provider)
	set(MetaID, e.ID)
	set(MetaType, e.Type)
	set(MetaResource, e.Resource)
	set(MetaAction, e.Action)
	set(MetaSubject, e.Subject)
	set(MetaTime, e.Time)
	set(MetaDeliveryID, e.DeliveryID)
	set(MetaStatus, e.Status)
	set(MetaError, e.Error)
}

// HashID is a short stable id derived from its parts: 32 hex characters
// (128 bits) of their SHA-256.
func HashID(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// BodyID is the id of a delivery that carries none: a hash of its raw
// bytes, which a provider's retry repeats exactly.
func BodyID(provider string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(provider))
	h.Write([]byte{0})
	h.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// ErrNotObject is returned for JSON that is valid but not an object.
var ErrNotObject = errors.New("payload is not a JSON object")

// Decode parses a payload into a map, keeping numbers exact (json.Number),
// optionally accepting The City's documented non-strict JSON. A payload that
// is not UTF-8 or has a key twice in one object is malformed too: readers
// disagree on what it says.
func Decode(body []byte, lenient bool) (map[string]any, error) {
	doc, err := jsonread.Decode(body, jsonread.Options{Lenient: lenient})
	var syntax *jsonread.SyntaxError
	switch {
	case err == nil:
		return doc, nil
	case errors.Is(err, jsonread.ErrNotObject):
		return nil, ErrNotObject
	case errors.As(err, &syntax):
		return nil, fmt.Errorf("payload is not valid JSON: %w", err)
	}
	return nil, fmt.Errorf("payload is malformed: %w", err)
}

// NormalizeTimes rewrites, in place, every string in v that is one of the
// providers' timestamp formats: date-times become RFC 3339 UTC and dates
// YYYY-MM-DD. Other values are left alone.
func NormalizeTimes(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if s, ok := e.(string); ok {
				if n, ok := timefmt.Normalize(s); ok {
					t[k] = n
				}
				continue
			}
			NormalizeTimes(e)
		}
	case []any:
		for i, e := range t {
			if s, ok := e.(string); ok {
				if n, ok := timefmt.Normalize(s); ok {
					t[i] = n
				}
				continue
			}
			NormalizeTimes(e)
		}
	}
}

// String returns v as a string if it is a non-empty string or a number.
func String(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	}
	return ""
}

// Missing lists the dotted paths of fields absent (or null) in obj.
func Missing(obj map[string]any, paths []string) []string {
	var missing []string
	for _, p := range paths {
		if Lookup(obj, p) == nil {
			missing = append(missing, p)
		}
	}
	return missing
}

// Lookup returns the value at a dotted path (gabs syntax), or nil. Paths
// through objects, which is what the catalogs hold, are walked here without
// allocating; gabs answers the rest (arrays, ~ escapes).
func Lookup(obj map[string]any, path string) any {
	if path == "" || strings.IndexByte(path, '~') >= 0 {
		return gabs.Wrap(obj).Path(path).Data()
	}
	var cur any = obj
	for rest := path; ; {
		m, ok := cur.(map[string]any)
		if !ok {
			if _, isArray := cur.([]any); isArray {
				return gabs.Wrap(obj).Path(path).Data()
			}
			return nil
		}
		seg, tail, more := strings.Cut(rest, ".")
		if cur, ok = m[seg]; !ok {
			return nil
		}
		if !more {
			return cur
		}
		rest = tail
	}
}

// OccurredAt is the first of fields in obj that holds a date-time, as
// RFC 3339 UTC, or "" when none does.
func OccurredAt(obj map[string]any, fields []string) string {
	for _, f := range fields {
		switch v := Lookup(obj, f).(type) {
		case string:
			if t, kind, ok := timefmt.Parse(v); ok && kind == timefmt.KindDateTime {
				return t.UTC().Format(time.RFC3339)
			}
		case json.Number:
			if t, ok := timefmt.ParseEpoch(v); ok {
				return t.UTC().Format(time.RFC3339)
			}
		}
	}
	return ""
}

// ReceiveTime is the time of an event that dates nothing itself: when it was
// received (the webhook_received_at metadata), else now.
func ReceiveTime(received string, now func() time.Time) string {
	if t, err := time.Parse(time.RFC3339Nano, received); err == nil {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return now().UTC().Format(time.RFC3339Nano)
}

// NewEventsCounter is the counter every provider processor counts its events
// in, by provider, type (catalogued types only, so series stay bounded) and
// status; dead letters are the series with a status other than valid.
func NewEventsCounter(mgr *service.Resources) *service.MetricCounter {
	return mgr.Metrics().NewCounter("webhook_events_total", "provider", "type", "status")
}

// Finish writes a parse result into msg — the event_* metadata and, when the
// body parsed, the payload as structured data — counts it, and returns what a
// provider processor returns: the message, or err to fail it.
func (e *Event) Finish(msg *service.Message, doc map[string]any, err error, events *service.MetricCounter, typeLabel string) (service.MessageBatch, error) {
	e.SetMeta(msg)
	if events != nil {
		events.Incr(1, e.Provider, typeLabel, e.Status)
	}
	if doc != nil {
		msg.SetStructuredMut(doc)
	}
	if err != nil {
		return nil, err
	}
	return service.MessageBatch{msg}, nil
}

// ParsingOptions are the options every provider processor reads from its
// lenient_json, strict and normalize_times fields.
type ParsingOptions struct {
	Lenient, Strict, NormalizeTimes bool
}

// ParsingOptionsFromConfig reads the three fields.
func ParsingOptionsFromConfig(conf *service.ParsedConfig) (ParsingOptions, error) {
	var o ParsingOptions
	var err error
	if o.Lenient, err = conf.FieldBool("lenient_json"); err != nil {
		return o, err
	}
	if o.Strict, err = conf.FieldBool("strict"); err != nil {
		return o, err
	}
	o.NormalizeTimes, err = conf.FieldBool("normalize_times")
	return o, err
}
