package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkCloudEventHeaders builds the binding headers of an envelope shaped
// like hookpipe's (the leading attributes, five extensions and a data
// object), and turns away a JSON object that is not an envelope.
func BenchmarkCloudEventHeaders(b *testing.B) {
	envelope := map[string]any{
		"specversion": "1.0", "id": "0123456789abcdef0123456789abcdef", "source": "/webhooks/controlshift",
		"type": "org.controlshift.signature.created", "subject": "petitions/save-the-park/signatures/1234",
		"time": "2026-11-24T10:00:00Z", "datacontenttype": "application/json",
		"provider": "controlshift", "resource": "signature", "action": "created",
		"deliveryid": "9fccc1957d7d7ebc93fb0f05", "receivedat": "2026-11-24T10:00:01.123Z",
		"data": map[string]any{"signature": map[string]any{"id": "1234"}},
	}
	b.Run("envelope", func(b *testing.B) {
		var hs []kgo.RecordHeader
		b.ReportAllocs()
		for b.Loop() {
			hs = appendCloudEventHeaders(hs[:0:0], envelope)
		}
		if len(hs) != 12 {
			b.Fatalf("%d headers, want 12", len(hs))
		}
	})
	b.Run("not_an_envelope", func(b *testing.B) {
		other := map[string]any{}
		for i := range 50 {
			other[fmt.Sprintf("field%02d", i)] = "value"
		}
		b.ReportAllocs()
		for b.Loop() {
			if hs := appendCloudEventHeaders(nil, other); len(hs) != 0 {
				b.Fatalf("%d headers for a plain object", len(hs))
			}
		}
	})
}
