// Package bloblang registers hookpipe's Bloblang methods and functions, for
// what a mapping could not say readably or quickly: the providers' timestamp
// formats, hookpipe's event ids and the envelope's JSON text.
package bloblang

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/bloblang"

	"github.com/hookpipe/hookpipe/plugins/event"
	"github.com/hookpipe/hookpipe/plugins/jsonwrite"
	"github.com/hookpipe/hookpipe/plugins/timefmt"
)

func init() {
	bloblang.MustRegisterMethodV2("normalize_webhook_time",
		bloblang.NewPluginSpec().
			Category("Timestamp Manipulation").
			Description("Normalizes a timestamp in any of the webhook providers' formats (`08/08/2012 09:17 PM (UTC)`, RFC 3339 with an offset, `Tue, 16 Apr 2013 22:42:38 +0000`, epoch seconds) to RFC 3339 UTC, and a plain date (`04/17/2013`, `2013-04-17`) to `YYYY-MM-DD`. Anything else is an error.").
			Example("", `root.created = this.created_at.normalize_webhook_time()`,
				[2]string{`{"created_at":"08/08/2012 09:17 PM (UTC)"}`, `{"created":"2012-08-08T21:17:00Z"}`},
				[2]string{`{"created_at":1391111866}`, `{"created":"2014-01-30T19:57:46Z"}`},
			),
		func(*bloblang.ParsedParams) (bloblang.Method, error) {
			return normalizeWebhookTime, nil
		})

	bloblang.MustRegisterMethodV2("json_text",
		bloblang.NewPluginSpec().
			Category("Parsing").
			Description("The value as compact JSON text: object keys sorted, `<`, `>` and `&` left as they are, numbers as received. For a message's root (`this.json_text()`) these are the bytes `content().string()` gives for a structured message, encoded without reflection, several times faster; sinks use it for the envelope column.").
			Example("", `root.event = this.json_text()`,
				[2]string{`{"b":1,"a":"<x>"}`, `{"event":"{\"a\":\"<x>\",\"b\":1}"}`},
			),
		func(*bloblang.ParsedParams) (bloblang.Method, error) {
			return jsonText, nil
		})

	bloblang.MustRegisterFunctionV2("webhook_event_id",
		bloblang.NewPluginSpec().
			Category("General").
			Description("The stable event id hookpipe derives from a provider, an event type and a delivery id: 32 hex characters of their SHA-256. It is what `controlshift_webhook` sets as `event_id` for a payload with a `jid`.").
			Param(bloblang.NewStringParam("provider")).
			Param(bloblang.NewStringParam("type")).
			Param(bloblang.NewStringParam("delivery_id")).
			Example("", `root.id = webhook_event_id("controlshift", this.type, this.jid)`,
				[2]string{`{"type":"petition.launched","jid":"9fccc1957d7d7ebc93fb0f05"}`, `{"id":"` + event.HashID("controlshift", "petition.launched", "9fccc1957d7d7ebc93fb0f05") + `"}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Function, error) {
			provider, err := args.GetString("provider")
			if err != nil {
				return nil, err
			}
			typ, err := args.GetString("type")
			if err != nil {
				return nil, err
			}
			delivery, err := args.GetString("delivery_id")
			if err != nil {
				return nil, err
			}
			id := event.HashID(provider, typ, delivery)
			return func() (any, error) { return id, nil }, nil
		})
}

// textBuffers are reused by json_text: only the string it returns is new.
var textBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func jsonText(v any) (any, error) {
	buf := textBuffers.Get().(*[]byte)
	defer textBuffers.Put(buf)
	b, err := jsonwrite.Append((*buf)[:0], v)
	if err != nil {
		return nil, err
	}
	*buf = b
	return string(b), nil
}

func normalizeWebhookTime(v any) (any, error) {
	switch t := v.(type) {
	case string:
		if n, ok := timefmt.Normalize(t); ok {
			return n, nil
		}
		return nil, fmt.Errorf("%q is not a known webhook timestamp format", t)
	case json.Number, int64, float64, int, uint64:
		if tm, ok := timefmt.ParseEpoch(t); ok {
			return timefmt.FromEpoch(tm.Unix()), nil
		}
	}
	return nil, fmt.Errorf("%v is not a webhook timestamp", v)
}
