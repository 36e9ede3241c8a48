package event

import (
	"context"
	"sync/atomic"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

// decoded is a body the webhook_server input already decoded while checking
// it, carried in the message's context so that the provider processor does
// not read the same bytes again.
type decoded struct {
	body    []byte
	lenient bool
	doc     map[string]any
	taken   atomic.Bool
}

type decodedKey struct{}

// CheckAndKeep validates body the way the provider processors will read it
// (jsonread's rules, The City's non-strict JSON when lenient) and returns msg
// carrying the decoded document for DecodeMessage. A body that does not
// decode returns jsonread's error and msg unchanged.
func CheckAndKeep(msg *service.Message, body []byte, lenient bool) (*service.Message, error) {
	doc, err := jsonread.Decode(body, jsonread.Options{Lenient: lenient})
	if err != nil {
		return msg, err
	}
	d := &decoded{body: body, lenient: lenient, doc: doc}
	return msg.WithContext(context.WithValue(msg.Context(), decodedKey{}, d)), nil
}

// DecodeMessage is Decode for body, the content of msg. It takes the document
// the input kept when the content is still those very bytes and was read
// under rules at least as strict; it takes it once, since the processor that
// takes it owns and changes it.
func DecodeMessage(msg *service.Message, body []byte, lenient bool) (map[string]any, error) {
	if d, ok := msg.Context().Value(decodedKey{}).(*decoded); ok &&
		sameBytes(d.body, body) && (lenient || !d.lenient) && d.taken.CompareAndSwap(false, true) {
		// Copies of a message share its context: d is read concurrently
		// and never written after CheckAndKeep.
		return d.doc, nil
	}
	return Decode(body, lenient)
}

// sameBytes reports whether a and b are the same slice of the same array:
// content replaced by a processor is a new array.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}
