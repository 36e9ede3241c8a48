package jsonwrite

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

// reference is what the engine stores for a structured message: encoding/json
// with HTML escaping off, without the trailing newline.
func reference(t testing.TB, v any) ([]byte, bool) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), true
}

func same(t *testing.T, v any) {
	t.Helper()
	want, wantOK := reference(t, v)
	got, err := Append(nil, v)
	if wantOK != (err == nil) {
		t.Fatalf("%#v: encoding/json ok=%v, Append error %v", v, wantOK, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%#v:\n got %s\nwant %s", v, got, want)
	}
}

func TestSameBytesAsEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, "", "plain", `quote " backslash \ slash /`, "<html> & 'apos'",
		"control \x00\x01\x1f\x7f \b\f\n\r\t", "bad utf8 \xff\xfe end", "\xe2\x80", "line\u2028para\u2029", "ünïcødé ✓ 😀",
		json.Number("0"), json.Number("-1.5e+10"), json.Number("123456789012345678901234567890"), json.Number(""), json.Number("01"), json.Number("1."), json.Number("abc"),
		int64(-42), int(7), uint64(math.MaxUint64), 0.0, math.Copysign(0, -1), 1.0, -1.5, 1e20, 1e21, 1e-6, 1e-7, 123456.789, math.MaxFloat64, math.SmallestNonzeroFloat64,
		float32(1e-7), float32(3.4e38), float32(0.1), math.NaN(), math.Inf(1),
		[]byte("bytes"), []byte(nil), []byte{}, map[string]any(nil), []any(nil), []any{}, map[string]any{},
		map[string]any{"b": 1.0, "a": []any{"x", nil, map[string]any{"z": true, "y": json.Number("2")}}, "": "empty key", "ä": 1, "A": 2, "\x00": 3},
		time.Date(2026, 11, 25, 10, 0, 0, 123, time.UTC), map[string]string{"k": "<v>"}, []string{"a"},
		map[string]any{"nan": math.NaN()},
	}
	for _, v := range values {
		same(t, v)
	}
	// Objects wider than the key buffer on the stack.
	wide := map[string]any{}
	for i := range 100 {
		wide[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('0'+i%10))] = i
	}
	same(t, wide)
	// Objects of the sizes webhooks have, sorted by insertion.
	for n := range 66 {
		m := map[string]any{}
		for i := range n {
			m[fmt.Sprintf("%c%d", 'z'-i%5, i*7919%1000)] = i
		}
		same(t, m)
	}
	// Every byte that needs a look, at every place in an eight-byte word
	// and in the tail after the last whole word.
	for _, special := range []string{`"`, `\`, "\x00", "\x1f", "\x7f", "\xff", "é", "\u2028", " "} {
		for at := range 20 {
			same(t, strings.Repeat("a", at)+special+strings.Repeat("b", 19-at))
		}
	}
}

// Every documented payload, decoded as the processors decode it.
func TestSameBytesForEveryExample(t *testing.T) {
	for _, ex := range append(examples.Provider(examples.ControlShift), examples.Provider(examples.TheCity)...) {
		doc, err := jsonread.Decode(ex.Body, jsonread.Options{Lenient: true})
		if err != nil {
			t.Fatalf("%s: %v", ex.Name, err)
		}
		same(t, doc)
	}
}

func TestContent(t *testing.T) {
	raw := service.NewMessage([]byte(`{"kept":"as sent" }`))
	if b, err := Content(raw); err != nil || string(b) != `{"kept":"as sent" }` {
		t.Fatalf("bytes message: %s, %v", b, err)
	}
	structured := service.NewMessage(nil)
	structured.SetStructured(map[string]any{"b": json.Number("1"), "a": "<x>"})
	engine, _ := structured.Copy().AsBytes()
	if b, err := Content(structured); err != nil || !bytes.Equal(b, engine) {
		t.Fatalf("structured message: %s, engine %s, %v", b, engine, err)
	}
	// NaN has no JSON: Append refuses it, and Content gives what the engine
	// gives, which is no bytes at all.
	bad := service.NewMessage(nil)
	bad.SetStructured(map[string]any{"n": math.NaN()})
	if _, err := Append(nil, map[string]any{"n": math.NaN()}); err == nil {
		t.Fatal("NaN encoded")
	}
	if b, _ := Content(bad); len(b) != 0 {
		t.Fatalf("NaN: %q", b)
	}
}

// AppendContent encodes onto the caller's buffer only a structured value it
// can encode; anything else is the message's own bytes (or the engine's),
// with the buffer untouched.
func TestAppendContent(t *testing.T) {
	prefix := []byte("prefix:")
	structured := service.NewMessage(nil)
	structured.SetStructured(map[string]any{"b": json.Number("1"), "a": "<x>"})
	b, encoded, err := AppendContent(prefix, structured)
	if err != nil || !encoded || string(b) != `prefix:{"a":"<x>","b":1}` {
		t.Fatalf("structured: %s, encoded %v, %v", b, encoded, err)
	}
	raw := service.NewMessage([]byte(`{"kept":"as sent" }`))
	if b, encoded, err := AppendContent(prefix[:0], raw); err != nil || encoded || string(b) != `{"kept":"as sent" }` {
		t.Fatalf("bytes message: %s, encoded %v, %v", b, encoded, err)
	}
	bad := service.NewMessage(nil)
	bad.SetStructured(map[string]any{"n": math.NaN()})
	if b, encoded, _ := AppendContent(prefix[:0], bad); encoded || len(b) != 0 {
		t.Fatalf("NaN: %q, encoded %v", b, encoded)
	}
}

func FuzzSameBytesAsEncodingJSON(f *testing.F) {
	f.Add("a\"b\\c\x00\u2028\xff", uint64(0x3ff0000000000000), "1.5e-7")
	f.Add("", uint64(0x7ff8000000000001), "-0")
	f.Fuzz(func(t *testing.T, s string, bits uint64, num string) {
		var fb [8]byte
		binary.LittleEndian.PutUint64(fb[:], bits)
		v := map[string]any{
			s:   s,
			"f": math.Float64frombits(bits),
			"g": float32(math.Float64frombits(bits)),
			"n": json.Number(num),
			"l": []any{s, fb[:], int64(bits), uint64(bits)},
			"m": manyKeys(s),
		}
		same(t, v)
	})
}

// manyKeys is an object keyed by every prefix and suffix of s, so the key
// sort sees keys sharing prefixes, first bytes above 0x7f, and objects on
// both sides of its size threshold.
func manyKeys(s string) map[string]any {
	m := map[string]any{}
	for i := range len(s) + 1 {
		m[s[:i]] = i
		m[s[i:]+"~"] = s[:i]
	}
	return m
}

func BenchmarkEnvelope(b *testing.B) {
	ex, _ := examples.Get(examples.ControlShift, "signature.created")
	doc, err := jsonread.Decode(ex.Body, jsonread.Options{})
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]any{"specversion": "1.0", "id": "0123456789abcdef0123456789abcdef", "source": "/webhooks/controlshift",
		"type": "org.controlshift.signature.created", "time": "2026-11-24T10:00:00Z", "datacontenttype": "application/json",
		"data": doc["data"], "provider": "controlshift", "resource": "signature", "action": "created"}
	b.Run("jsonwrite", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = Append(buf[:0], env)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reference(b, env)
		}
	})
}
