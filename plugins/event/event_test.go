package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

func TestDecode(t *testing.T) {
	doc, err := Decode([]byte(`{"id":12345678901234567890,"a":nil "b":[1,],}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if doc["id"] != json.Number("12345678901234567890") || doc["a"] != nil || len(doc["b"].([]any)) != 1 {
		t.Errorf("lenient document = %#v", doc)
	}

	for _, tc := range []struct {
		body    string
		lenient bool
		want    string // the start of the error
		is      error
	}{
		{`[1]`, false, "payload is not a JSON object", ErrNotObject},
		{`nil`, true, "payload is not a JSON object", ErrNotObject},
		{`{"type":`, false, "payload is not valid JSON: jsonread: unexpected end of input at offset 8", nil},
		{`{"a":nil}`, false, "payload is not valid JSON: ", nil},
		{`{"a":1} {}`, false, "payload is not valid JSON: ", nil},
		{`{"a":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, false, "payload is not valid JSON: ", jsonread.ErrTooDeep},
		{`{"type":"a","type":"b"}`, false, `payload is malformed: jsonread: the key "type" appears twice`, nil},
		{"{\"a\":\"\xff\"}", true, "payload is malformed: ", jsonread.ErrNotUTF8},
	} {
		doc, err := Decode([]byte(tc.body), tc.lenient)
		if err == nil || doc != nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Decode(%.40q) = %v, want an error starting %q", tc.body, err, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("Decode(%.40q) = %v, want %v", tc.body, err, tc.is)
		}
	}
}
