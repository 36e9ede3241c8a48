package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/Jeffail/gabs/v2"

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

// Lookup walks object paths itself; whatever the path, it must answer what
// gabs answers.
func TestLookupAgreesWithGabs(t *testing.T) {
	doc, err := Decode([]byte(`{"a":{"b":{"c":1},"n":null,"s":"x","arr":[{"d":2},{"d":3}]},"dot.key":4,"tilde~key":5,"":6,"top":[1,2]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"a", "a.b", "a.b.c", "a.b.c.d", "a.n", "a.n.x", "a.s", "a.s.x", "a.missing", "missing.b",
		"a.arr", "a.arr.d", "a.arr.0", "a.arr.1.d", "dot~1key", "tilde~0key", "", "top", "top.0", "a.", ".a", "a..b"}
	for _, p := range paths {
		want, err := json.Marshal(gabs.Wrap(doc).Path(p).Data())
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(Lookup(doc, p))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("Lookup(%q) = %s, gabs says %s", p, got, want)
		}
	}
	if v := Lookup(doc, "a.b.c"); v == nil {
		t.Error("a.b.c not found")
	}
}

func BenchmarkLookup(b *testing.B) {
	doc, _ := Decode([]byte(`{"type":"signature.created","data":{"petition":{"slug":"s"},"id":1}}`), false)
	b.ReportAllocs()
	for b.Loop() {
		if Lookup(doc, "data.petition.slug") == nil {
			b.Fatal("not found")
		}
	}
}
