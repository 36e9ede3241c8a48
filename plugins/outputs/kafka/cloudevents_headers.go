package kafka

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookpipe/hookpipe/plugins/jsonwrite"
)

// The CloudEvents Kafka protocol binding names attribute headers "ce_" +
// attribute; in structured mode the content-type header names the format.
const (
	ceHeaderPrefix   = "ce_"
	ceContentType    = "content-type"
	ceStructuredJSON = "application/cloudevents+json"
	ceSpecVersion    = "1.0"
)

// ceLeadingAttrs are written first, in this order; extensions follow sorted.
// ceLeadingIndex gives their positions.
var ceLeadingAttrs = [...]string{"specversion", "id", "source", "type", "subject", "time", "dataschema"}

// ceLeadingKeys are the header keys of ceLeadingAttrs, built once.
var ceLeadingKeys = func() []string {
	keys := make([]string, len(ceLeadingAttrs))
	for i, a := range ceLeadingAttrs {
		keys[i] = ceHeaderPrefix + a
	}
	return keys
}()

// isCloudEventsHeader reports whether a header key belongs to the binding, so
// metadata cannot shadow what the envelope says.
func isCloudEventsHeader(k string) bool {
	return strings.HasPrefix(k, ceHeaderPrefix) || strings.EqualFold(k, ceContentType)
}

// appendMessageCloudEventHeaders appends the binding headers when the
// message, whose bytes are value, is a CloudEvents envelope. It reuses the
// message's parsed form, which topic and key interpolations such as
// json("type") have usually produced already.
func appendMessageCloudEventHeaders(hs []kgo.RecordHeader, msg *service.Message, value []byte) []kgo.RecordHeader {
	// Cheap rejection of what cannot be a JSON object before parsing.
	trimmed := bytes.TrimLeft(value, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return hs
	}
	v, err := msg.AsStructured()
	if err != nil {
		return hs
	}
	return appendCloudEventHeaders(hs, v)
}

// appendCloudEventHeaders appends the binding headers of a parsed CloudEvents
// 1.0 structured JSON envelope to hs. Any other value leaves hs as it is.
func appendCloudEventHeaders(hs []kgo.RecordHeader, v any) []kgo.RecordHeader {
	attrs, ok := v.(map[string]any)
	if !ok {
		return hs
	}
	// Any other JSON object is turned away with one lookup.
	if s, _ := attrs["specversion"].(string); s != ceSpecVersion {
		return hs
	}
	// One pass over the envelope sorts its members into the leading
	// attributes, by position, and the extensions, and sums the size of
	// their header values: the headers and their values then take one
	// allocation each, of the size they need.
	var leading [len(ceLeadingAttrs)]any
	var extensionStore [16]ceMember
	extensions := extensionStore[:0]
	size := len(ceStructuredJSON)
	for name, value := range attrs {
		if i := ceLeadingIndex(name); i >= 0 {
			leading[i] = value
		} else if isCEExtension(name) {
			extensions = append(extensions, ceMember{name, value})
		} else {
			continue
		}
		size += ceHeaderValueSize(value)
	}
	for _, required := range leading[1:4] { // id, source, type
		if s, ok := required.(string); !ok || s == "" {
			return hs
		}
	}

	count := len(extensions) + 1 // and content-type
	for _, value := range leading {
		if value != nil {
			count++
		}
	}
	hs = slices.Grow(hs, count)
	values := make([]byte, 0, size)
	add := func(key string, v any) {
		start := len(values)
		var ok bool
		if values, ok = appendCEHeaderValue(values, v); ok {
			hs = append(hs, kgo.RecordHeader{Key: key, Value: values[start:len(values):len(values)]})
		}
	}
	for i, value := range leading {
		add(ceLeadingKeys[i], value)
	}
	slices.SortFunc(extensions, func(a, b ceMember) int { return strings.Compare(a.name, b.name) })
	for _, e := range extensions {
		add(ceExtensionKey(e.name), e.value)
	}
	add(ceContentType, ceStructuredJSON)
	return hs
}

// ceMember is an extension attribute of an envelope.
type ceMember struct {
	name  string
	value any
}

// ceLeadingIndex is the position of name in ceLeadingAttrs, or -1.
func ceLeadingIndex(name string) int {
	switch name {
	case "specversion":
		return 0
	case "id":
		return 1
	case "source":
		return 2
	case "type":
		return 3
	case "subject":
		return 4
	case "time":
		return 5
	case "dataschema":
		return 6
	}
	return -1
}

// ceHeaderValueSize is the size of v's header value, exact for text and
// an allowance for other values (a larger one grows the buffer).
func ceHeaderValueSize(v any) int {
	switch t := v.(type) {
	case nil:
		return 0
	case string:
		return len(t)
	case json.Number:
		return len(t)
	}
	return 24
}

// isCEExtension reports whether an envelope member is an extension
// attribute, with a header of its own: not a leading attribute, not the
// payload (data, data_base64), not datacontenttype (it describes data inside
// the envelope, not the record value), and a valid attribute name.
func isCEExtension(name string) bool {
	switch name {
	case "specversion", "id", "source", "type", "subject", "time", "dataschema",
		"data", "data_base64", "datacontenttype":
		return false
	}
	return validCEAttrName(name)
}

// ceExtensionKey is an extension's header key; those of the extensions
// hookpipe's envelope sets are constants, others are built per record.
func ceExtensionKey(name string) string {
	switch name {
	case "provider":
		return "ce_provider"
	case "resource":
		return "ce_resource"
	case "action":
		return "ce_action"
	case "deliveryid":
		return "ce_deliveryid"
	case "receivedat":
		return "ce_receivedat"
	case "replayed":
		return "ce_replayed"
	}
	return ceHeaderPrefix + name
}

// appendCEHeaderValue appends an attribute's header value to dst: strings
// as their text, numbers and booleans as their JSON text, other values as
// compact JSON. Absent and null attributes, and values with no JSON
// encoding, have no header.
func appendCEHeaderValue(dst []byte, v any) ([]byte, bool) {
	switch t := v.(type) {
	case nil:
		return dst, false
	case string:
		return append(dst, t...), true
	case json.Number:
		return append(dst, t...), true
	case bool:
		return strconv.AppendBool(dst, t), true
	}
	out, err := jsonwrite.Append(dst, v)
	if err != nil {
		return dst, false
	}
	return out, true
}

// validCEAttrName holds CloudEvents attribute names to lower-case ASCII
// letters and digits; other members are not attributes and get no header.
func validCEAttrName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
