package jsonread

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/examples"
)

// trickyDocs are strict-mode inputs whose reading is easy to get wrong, accepted or not.
var trickyDocs = []string{
	// Shapes and whitespace.
	`{}`, ` {} `, "\t\r\n{\n\"a\"\t:\r1 }\n", `{"a":{}}`, `{"a":[]}`, `{"a":[[]]}`, `{"a":[{}]}`,
	`{"a":[1,{"b":[true,false,null]}],"c":{"d":{"e":"f"}}}`, `{"":1}`, `{" ":1,"  ":2}`,
	`{"a":null,"b":false,"c":true}`,
	// Numbers, kept as written.
	`{"n":0}`, `{"n":-0}`, `{"n":-0.0e-0}`, `{"n":1E+2}`, `{"n":1e-2}`, `{"n":0.1}`, `{"n":-1.5e300}`,
	`{"n":1e400}`, `{"n":123456789012345678901234567890}`, `{"n":[1,-2,3.25,4e1]}`,
	// Strings and escapes.
	`{"s":"\"\\\/\b\f\n\r\t"}`, `{"s":"\u0000"}`, `{"s":"\u00e9\u00E9"}`, `{"s":"é😀\u2028"}`,
	`{"s":"\ud83d\ude00"}`, `{"s":"\uD83D\uDE00"}`, `{"s":"\ud800"}`, `{"s":"\udc00"}`,
	`{"s":"\ud800\ud800"}`, `{"s":"\ud800\u0041"}`, `{"s":"\ud800x"}`, `{"s":"\ud83d\ude00\ud83d"}`,
	`{"s":"\udc00\ud800\udc00"}`, `{"s":"\ud800\\ude00"}`, `{"s":"\ud800\ud800\udc00"}`, `{"s":"a\ud800"}`,
	`{"s":"\ufffd"}`, `{"s":"x\\"}`, `{"s":"\\u0041"}`, `{"\u0041":"\u0042"}`, `{"s":"` + strings.Repeat("long ", 40) + `"}`,
	// Refused.
	``, ` `, `[]`, `"x"`, `1`, `true`, `null`, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a" 1}`,
	`{'a':1}`, `{a:1}`, `{"a":01}`, `{"a":1.}`, `{"a":.1}`, `{"a":+1}`, `{"a":-}`, `{"a":1e}`, `{"a":1e+}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":nil}`, `{"a":NaN}`, `{"a":Infinity}`, `{"a":"\x"}`, `{"a":"\u12"}`,
	`{"a":"\U0041"}`, "{\"a\":\"tab\there\"}", "{\"a\":\"\x7f\"}", `{"a":1}{}`, `{"a":1} x`, `{"a":1}]`,
	"\xef\xbb\xbf{}", `/*c*/{}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"a":1 "b":2}`, `{"a":1,"a":2}`,
	`{"a":{"b":1,"b":2}}`, "{\"a\":\"\xff\"}", "{\"a\":1}\x00",
}

// refDecode is what event.Decode did before jsonread: encoding/json's Decoder with UseNumber,
// and nothing after the value.
func refDecode(in []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	accepted := 0
	for _, in := range trickyDocs {
		got, err := Decode([]byte(in), strict)
		if !sameKind(err, refCheck([]byte(in), DefaultMaxDepth)) {
			t.Errorf("Decode(%q): %v, reference %v", in, err, refCheck([]byte(in), DefaultMaxDepth))
			continue
		}
		if err != nil {
			continue
		}
		accepted++
		want, werr := refDecode([]byte(in))
		if werr != nil {
			t.Errorf("Decode(%q) accepts what encoding/json refuses: %v", in, werr)
		} else if !reflect.DeepEqual(any(got), want) {
			t.Errorf("Decode(%q):\n got %#v\nwant %#v", in, got, want)
		}
	}
	if accepted < 40 {
		t.Errorf("only %d tricky documents accepted", accepted)
	}
}

func TestDecodeExamples(t *testing.T) {
	for _, ex := range examples.All() {
		opt := Options{Lenient: ex.Provider == examples.TheCity}
		got, err := Decode(ex.Body, opt)
		if err != nil {
			t.Errorf("%s/%s: %v", ex.Provider, ex.Name, err)
			continue
		}
		strictBody, err := Normalize(ex.Body)
		if err != nil {
			t.Fatalf("%s/%s: %v", ex.Provider, ex.Name, err)
		}
		want, err := refDecode(strictBody)
		if err != nil {
			t.Fatalf("%s/%s: %v", ex.Provider, ex.Name, err)
		}
		if !reflect.DeepEqual(any(got), want) {
			t.Errorf("%s/%s:\n got %#v\nwant %#v", ex.Provider, ex.Name, got, want)
		}
		if json.Valid(ex.Body) {
			if got, err := Decode(ex.Body, strict); err != nil || !reflect.DeepEqual(any(got), want) {
				t.Errorf("%s/%s strict: %v", ex.Provider, ex.Name, err)
			}
		}
	}
}

func TestDecodeValues(t *testing.T) {
	doc, err := Decode([]byte(`{"n":-1.50e+3,"s":"a\"b","e":[],"o":{},"nil":nil,"t":true,"f":false,"x":null}`), lenient)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"n": json.Number("-1.50e+3"), "s": `a"b`, "e": []any{}, "o": map[string]any{},
		"nil": nil, "t": true, "f": false, "x": nil,
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("got %#v\nwant %#v", doc, want)
	}
	// Empty containers are empty, not nil, as in encoding/json.
	if doc["e"].([]any) == nil || doc["o"].(map[string]any) == nil {
		t.Error("an empty container decoded as nil")
	}
}

func TestDecodeDuplicateKeysAllowed(t *testing.T) {
	in := []byte(`{"a":1,"b":{"c":1,"c":[2]},"a":{"d":2},"\u0061":"last"}`)
	got, err := Decode(in, Options{AllowDuplicateKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := refDecode(in)
	if !reflect.DeepEqual(any(got), want) || got["a"] != "last" {
		t.Errorf("got %#v, want %#v (encoding/json keeps the last value)", got, want)
	}
}

func TestDecodeCopiesItsInput(t *testing.T) {
	in := []byte(`{"plain":"abc","esc":"a\nb","n":12,"k":{"key":"v"}}`)
	got, err := Decode(in, strict)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := refDecode(in)
	for i := range in {
		in[i] = 'x'
	}
	if !reflect.DeepEqual(any(got), want) {
		t.Errorf("result changed with its input: %#v", got)
	}
}

// Decoders are reused: nothing of one body, accepted or refused, may show up in the next,
// sequentially or concurrently.
func TestDecodeReuse(t *testing.T) {
	bodies := examples.All()
	wants := make([]any, len(bodies))
	for i, ex := range bodies {
		norm, err := Normalize(ex.Body)
		if err != nil {
			t.Fatal(err)
		}
		wants[i], _ = refDecode(norm)
	}
	broken := []string{`{"a":[1,2,{"b":"c"`, `{"a":{"b":[1,2],"b":3}}`, `{"x":1,"y":[{"z":2}]]`}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for round := range 50 {
				_, _ = Decode([]byte(broken[(g+round)%len(broken)]), lenient)
				i := (g*7 + round) % len(bodies)
				got, err := Decode(bodies[i].Body, lenient)
				if err != nil || !reflect.DeepEqual(any(got), wants[i]) {
					errs <- fmt.Errorf("%s: %v, or a different document", bodies[i].Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDecodeAllocations(t *testing.T) {
	ex, _ := examples.Get(examples.ControlShift, "signature.created")
	_, _ = Decode(ex.Body, strict)
	// A map per object, an interface per string or number, one copy of the body.
	if n := testing.AllocsPerRun(50, func() { _, _ = Decode(ex.Body, strict) }); n > 45 {
		t.Errorf("%v allocations", n)
	}
}

func FuzzDecode(f *testing.F) {
	for _, ex := range examples.All() {
		f.Add(ex.Body)
	}
	for _, s := range trickyDocs {
		f.Add([]byte(s))
	}
	opts := []Options{strict, lenient, {AllowDuplicateKeys: true}, {Lenient: true, AllowDuplicateKeys: true}, {MaxDepth: 2}}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		for _, opt := range opts {
			got, err := Decode(in, opt)
			if !bytes.Equal(in, orig) {
				t.Fatal("input modified")
			}
			// Check and Decode give the same verdict, to the byte.
			cerr := Check(in, opt)
			if fmt.Sprint(err) != fmt.Sprint(cerr) {
				t.Fatalf("%+v: Decode: %v, Check: %v", opt, err, cerr)
			}
			if err != nil {
				if got != nil {
					t.Fatalf("%+v: a document with error %v", opt, err)
				}
				continue
			}
			strictIn := in
			if opt.Lenient {
				if strictIn, err = Normalize(in); err != nil {
					t.Fatalf("%+v: Normalize refuses what Decode accepts: %v", opt, err)
				}
			}
			want, err := refDecode(strictIn)
			if err != nil {
				t.Fatalf("%+v: encoding/json refuses what Decode accepts: %v", opt, err)
			}
			if !reflect.DeepEqual(any(got), want) {
				t.Fatalf("%+v:\n got %#v\nwant %#v", opt, got, want)
			}
		}
	})
}
