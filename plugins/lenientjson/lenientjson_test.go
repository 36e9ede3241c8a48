package lenientjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/examples"
)

// cityFixes repairs each non-strict City example by hand, edit by edit, as an independent
// statement of what Normalize must produce.
var cityFixes = map[string][]struct{ old, new string }{
	"checkins_create": {
		{`"external_id":nil,`, `"external_id":null,`},
	},
	"checkins_check_out": {
		{`[nil, 1038054164]`, `[null, 1038054164]`},
		{`[nil, "2012-09-27T13:41:16-07:00"]`, `[null, "2012-09-27T13:41:16-07:00"]`},
		{`} "group":{`, `}, "group":{`},
		{`"external_id":nil,`, `"external_id":null,`},
		{`1038054164, }`, `1038054164 }`},
	},
	"groups_create": {
		{`"nickname":nil,`, `"nickname":null,`},
		{`"last_engaged":nil,`, `"last_engaged":null,`},
	},
	"groups_update": {
		{`"nickname":nil,`, `"nickname":null,`},
		{`"last_engaged":nil,`, `"last_engaged":null,`},
	},
	"roles_create": {
		{`"Johns Community Group", }`, `"Johns Community Group" }`},
	},
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestCityExamples(t *testing.T) {
	for name, fixes := range cityFixes {
		t.Run(name, func(t *testing.T) {
			ex, ok := examples.Get(examples.TheCity, name)
			if !ok {
				t.Fatalf("example %s missing", name)
			}
			if json.Valid(ex.Body) {
				t.Fatal("example is already strict JSON")
			}
			want := string(ex.Body)
			for _, f := range fixes {
				if strings.Count(want, f.old) != 1 {
					t.Fatalf("fix %q matches %d times", f.old, strings.Count(want, f.old))
				}
				want = strings.Replace(want, f.old, f.new, 1)
			}
			if !json.Valid([]byte(want)) {
				t.Fatalf("hand-fixed example is not valid JSON: %s", want)
			}
			got, err := Normalize(ex.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("Normalize:\n got %s\nwant %s", got, want)
			}
			if !Valid(ex.Body) {
				t.Error("Valid = false")
			}
			if !reflect.DeepEqual(decode(t, got), decode(t, []byte(want))) {
				t.Error("decoded values differ")
			}
		})
	}
}

func TestCityExampleValues(t *testing.T) {
	get := func(name string) map[string]any {
		t.Helper()
		ex, _ := examples.Get(examples.TheCity, name)
		out, err := Normalize(ex.Body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return decode(t, out)
	}
	checkOut := get("checkins_check_out")
	changed := checkOut["changed"].(map[string]any)
	if got := changed["checked_out_by_user_id"]; !reflect.DeepEqual(got, []any{nil, json.Number("1038054164")}) {
		t.Errorf("changed.checked_out_by_user_id = %#v", got)
	}
	if got := changed["checked_out_at"]; !reflect.DeepEqual(got, []any{nil, "2012-09-27T13:41:16-07:00"}) {
		t.Errorf("changed.checked_out_at = %#v", got)
	}
	group := checkOut["group"].(map[string]any)
	if group["external_id"] != nil || group["name"] != "First Grade" || group["id"] != json.Number("1023606148") {
		t.Errorf("group = %#v", group)
	}
	if checkOut["checked_in_by_user_id"] != json.Number("1038054164") || len(checkOut) != 21 {
		t.Errorf("last member %#v, %d members", checkOut["checked_in_by_user_id"], len(checkOut))
	}

	create := get("checkins_create")
	if g := create["group"].(map[string]any); g["external_id"] != nil || len(g) != 3 {
		t.Errorf("checkins_create group = %#v", g)
	}
	if create["callboard_number"] != "106" || create["checked_out_at"] != nil {
		t.Errorf("checkins_create = %#v", create)
	}

	for _, name := range []string{"groups_create", "groups_update"} {
		g := get(name)
		for _, k := range []string{"nickname", "last_engaged"} {
			if v, ok := g[k]; !ok || v != nil {
				t.Errorf("%s.%s = %#v, %v", name, k, v, ok)
			}
		}
		if g["external_description"] != "CG for John's group" {
			t.Errorf("%s.external_description = %#v", name, g["external_description"])
		}
	}
	if got := get("groups_update")["changed"]; !reflect.DeepEqual(got, map[string]any{"secure": []any{false, true}}) {
		t.Errorf("groups_update.changed = %#v", got)
	}

	roles := get("roles_create")
	if roles["group_name"] != "Johns Community Group" || roles["webhook_timestamp"] != json.Number("1391111866") {
		t.Errorf("roles_create = %#v", roles)
	}
}

func TestStrictInputUnchanged(t *testing.T) {
	inputs := [][]byte{
		[]byte(`{"a":"nil","b":[1,2],"c":null}`),
		[]byte(" [ ] "),
		[]byte(`"x,}"`),
		[]byte(`-0.5e+10`),
	}
	for _, ex := range examples.All() {
		if json.Valid(ex.Body) {
			inputs = append(inputs, ex.Body)
		}
	}
	if len(inputs) < 4+22+18 {
		t.Fatalf("only %d strict inputs", len(inputs))
	}
	for _, in := range inputs {
		out, err := Normalize(in)
		if err != nil {
			t.Errorf("%.40s: %v", in, err)
			continue
		}
		if len(out) != len(in) || &out[0] != &in[0] {
			t.Errorf("%.40s: strict input was copied or changed", in)
		}
		if !Valid(in) {
			t.Errorf("%.40s: Valid = false", in)
		}
	}
	in := inputs[0]
	if n := testing.AllocsPerRun(100, func() { _, _ = Normalize(in) }); n != 0 {
		t.Errorf("strict path allocates %v times", n)
	}
}

func TestLenientRewrites(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`nil`, `null`},
		{` nil `, ` null `},
		{`[nil]`, `[null]`},
		{`[nil,nil]`, `[null,null]`},
		{`{"a":nil}`, `{"a":null}`},
		{`{"a":"nil",}`, `{"a":"nil"}`},
		{`[1, 2, ]`, `[1, 2 ]`},
		{`[1,]`, `[1]`},
		{"[1,\n]", "[1\n]"},
		{`[[],{},]`, `[[],{}]`},
		{`{"a":1 , }`, `{"a":1  }`},
		{`{"a":{"b":1} "c":2}`, `{"a":{"b":1}, "c":2}`},
		{`{"a":1"b":2}`, `{"a":1,"b":2}`},
		{"{ \"a\":1\n \"b\":2 }", "{ \"a\":1,\n \"b\":2 }"},
		{`{"a":[nil, 1] "b":nil,}`, `{"a":[null, 1], "b":null}`},
		{`{"a":"x" "b":true "c":[] "d":null "e":-1.5e3}`, `{"a":"x", "b":true, "c":[], "d":null, "e":-1.5e3}`},
		{`{"k\"ey":nil, "nil":"nil"}`, `{"k\"ey":null, "nil":"nil"}`},
		{`[{"a":nil,},]`, `[{"a":null}]`},
	} {
		got, err := Normalize([]byte(tc.in))
		if err != nil {
			t.Errorf("Normalize(%q): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("Normalize(%q) = %q is not valid JSON", tc.in, got)
		}
		if !Valid([]byte(tc.in)) {
			t.Errorf("Valid(%q) = false", tc.in)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		in     string
		offset int
		msg    string
	}{
		{``, 0, "unexpected end of input"},
		{`   `, 3, "unexpected end of input"},
		{`"abc`, 4, "unexpected end of input"},
		{`{"a":"abc}`, 10, "unexpected end of input"},
		{`{nil: 1}`, 1, "unexpected 'n'"},
		{`{"a":nil, nil:1}`, 10, "unexpected 'n'"},
		{`nill`, 3, "unexpected 'l'"},
		{`{"a": nill}`, 9, "unexpected 'l'"},
		{`[ni]`, 2, "unexpected 'i'"},
		{`Nil`, 0, "unexpected 'N'"},
		{`garbage`, 0, "unexpected 'g'"},
		{`{"a":garbage}`, 5, "unexpected 'g'"},
		{`,`, 0, "unexpected ','"},
		{`[,]`, 1, "unexpected ','"},
		{`{,}`, 1, "unexpected ','"},
		{`[1,,2]`, 3, "unexpected ','"},
		{`[1,,]`, 3, "unexpected ','"},
		{`{"a":1,,"b":2}`, 7, "unexpected ','"},
		{`{"a":1,,}`, 7, "unexpected ','"},
		// A missing comma between array elements is not a documented deviation.
		{`[1 2]`, 3, "unexpected '2'"},
		{`[nil nil]`, 5, "unexpected 'n'"},
		{`[{} {}]`, 4, "unexpected '{'"},
		// Only a key may follow a member value without a comma.
		{`{"a":1 2}`, 7, "unexpected '2'"},
		{`{"a":1 "b"}`, 10, "unexpected '}'"},
		{`{"a" 1}`, 5, "unexpected '1'"},
		{`{"a":}`, 5, "unexpected '}'"},
		{`{"a":1`, 6, "unexpected end of input"},
		{`{"a":1}}`, 7, "unexpected '}'"},
		{`[1,]]`, 4, "unexpected ']'"},
		{`nil,`, 3, "unexpected ','"},
		{`"\x"`, 2, "unexpected 'x'"},
		{`"a\u12"`, 6, "unexpected '\"'"},
		{"\"a\tb\"", 2, `unexpected '\t'`},
		{"\"a\nb\"", 2, `unexpected '\n'`},
		{`01`, 1, "unexpected '1'"},
		{`-`, 1, "unexpected end of input"},
		{`1.`, 2, "unexpected end of input"},
		{`1e`, 2, "unexpected end of input"},
		{`.5`, 0, "unexpected '.'"},
		{`+1`, 0, "unexpected '+'"},
		{`tru`, 3, "unexpected end of input"},
		{`True`, 0, "unexpected 'T'"},
		{`[nul]`, 4, "unexpected ']'"},
		{`{'a':1}`, 1, `unexpected '\''`},
		{"\xef\xbb\xbf{}", 0, `unexpected '\xef'`},
		{"[\x00]", 1, `unexpected '\x00'`},
		{`/* c */ {}`, 0, "unexpected '/'"},
	} {
		_, err := Normalize([]byte(tc.in))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Normalize(%q): error %v, want a *SyntaxError", tc.in, err)
			continue
		}
		want := "lenientjson: " + tc.msg + " at offset " + strconv.Itoa(tc.offset)
		if se.Offset != tc.offset || err.Error() != want {
			t.Errorf("Normalize(%q): %q (offset %d), want %q", tc.in, err, se.Offset, want)
		}
		if Valid([]byte(tc.in)) {
			t.Errorf("Valid(%q) = true", tc.in)
		}
	}
}

func TestDepth(t *testing.T) {
	nest := func(n int, inner string) []byte {
		return []byte(strings.Repeat("[", n) + inner + strings.Repeat("]", n))
	}
	if out, err := Normalize(nest(MaxDepth, "nil")); err != nil || !json.Valid(out) {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	_, err := Normalize(nest(MaxDepth+1, "nil"))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != MaxDepth || !strings.Contains(err.Error(), "nesting deeper than 512") {
		t.Errorf("depth %d: %v", MaxDepth+1, err)
	}
	objects := []byte(strings.Repeat(`{"a":`, MaxDepth+1) + "nil" + strings.Repeat("}", MaxDepth+1))
	if _, err := Normalize(objects); err == nil || Valid(objects) {
		t.Errorf("objects deeper than %d accepted", MaxDepth)
	}
	// Hostile depth fails fast instead of exhausting the stack.
	if _, err := Normalize(nest(1_000_000, "nil")); err == nil {
		t.Error("million-deep input accepted")
	}
	// Strict JSON takes the fast path and is bounded by encoding/json instead.
	deep := nest(MaxDepth+100, "")
	if out, err := Normalize(deep); err != nil || &out[0] != &deep[0] || !Valid(deep) {
		t.Errorf("strict deep input: %v", err)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, ex := range examples.All() {
		f.Add(ex.Body)
	}
	for _, s := range []string{``, `nil`, `[1,]`, `{"a":1 "b":nil,}`, `[1 2]`, `{"a":"\u00e9\n"}`, `[[[nil]]]`, `-0.0e-0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, err := Normalize(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("Normalize modified its input")
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(in) {
				t.Fatalf("error %v is not a SyntaxError within the input", err)
			}
			if Valid(in) || json.Valid(in) {
				t.Fatal("rejected input that Valid or json.Valid accepts")
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		again, err := Normalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Normalize is not idempotent: %q -> %q (%v)", out, again, err)
		}
		if !Valid(in) {
			t.Fatal("Valid = false for input Normalize accepts")
		}
		// The parser must agree with encoding/json on strict input: no rewrite where it is
		// valid, and some rewrite where it is not.
		p := parser{src: in}
		perr := p.parse()
		switch {
		case perr != nil && !strings.Contains(perr.Error(), "nesting deeper"):
			t.Fatalf("parser rejects accepted input: %v", perr)
		case perr == nil && (p.edits == 0) != json.Valid(in):
			t.Fatalf("parser made %d edits, json.Valid = %v", p.edits, json.Valid(in))
		}
	})
}

func benchExample(b *testing.B, provider, name string) []byte {
	ex, ok := examples.Get(provider, name)
	if !ok {
		b.Fatalf("example %s missing", name)
	}
	return ex.Body
}

func BenchmarkNormalizeStrict(b *testing.B) {
	in := benchExample(b, examples.ControlShift, "petition.launched")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Normalize(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONValid is the reference for the strict path: encoding/json validating the same
// document.
func BenchmarkJSONValid(b *testing.B) {
	in := benchExample(b, examples.ControlShift, "petition.launched")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(in) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkNormalizeLenient(b *testing.B) {
	in := benchExample(b, examples.TheCity, "checkins_check_out")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Normalize(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidLenient(b *testing.B) {
	in := benchExample(b, examples.TheCity, "checkins_check_out")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if !Valid(in) {
			b.Fatal("invalid")
		}
	}
}
