package jsonread

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
			if err := Check(ex.Body, lenient); err != nil {
				t.Errorf("Check: %v", err)
			}
			if !reflect.DeepEqual(decode(t, got), decode(t, []byte(want))) {
				t.Error("decoded values differ")
			}
			if doc, err := Decode(ex.Body, lenient); err != nil || !reflect.DeepEqual(doc, decode(t, []byte(want))) {
				t.Errorf("Decode: %v, or a different document", err)
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
		doc, err := Decode(ex.Body, lenient)
		if err != nil || !reflect.DeepEqual(doc, decode(t, out)) {
			t.Fatalf("%s: Decode: %v, or a different document than Normalize's", name, err)
		}
		return doc
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
		if err := Check(in, lenient); err != nil && err != ErrNotObject {
			t.Errorf("%.40s: Check: %v", in, err)
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
		if err := Check([]byte(tc.in), lenient); err != nil && err != ErrNotObject {
			t.Errorf("Check(%q): %v", tc.in, err)
		}
		if !bytes.HasPrefix([]byte(tc.in), []byte("{")) {
			continue
		}
		if doc, err := Decode([]byte(tc.in), lenient); err != nil || !reflect.DeepEqual(doc, decode(t, got)) {
			t.Errorf("Decode(%q): %v, or a different document than Normalize's", tc.in, err)
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
		want := "jsonread: " + tc.msg + " at offset " + strconv.Itoa(tc.offset)
		if se.Offset != tc.offset || se.Msg != tc.msg || err.Error() != want {
			t.Errorf("Normalize(%q): %q (offset %d), want %q", tc.in, err, se.Offset, want)
		}
		// Check and Decode, lenient, find the same error.
		if err := Check([]byte(tc.in), lenient); err == nil || err.Error() != want {
			t.Errorf("Check(%q): %v, want %q", tc.in, err, want)
		}
		if _, err := Decode([]byte(tc.in), lenient); err == nil || err.Error() != want {
			t.Errorf("Decode(%q): %v, want %q", tc.in, err, want)
		}
	}
}

func TestDepth(t *testing.T) {
	nest := func(n int, inner string) []byte {
		return []byte(strings.Repeat("[", n) + inner + strings.Repeat("]", n))
	}
	const max = DefaultMaxDepth
	if out, err := Normalize(nest(max, "nil")); err != nil || !json.Valid(out) {
		t.Errorf("depth %d: %v", max, err)
	}
	_, err := Normalize(nest(max+1, "nil"))
	var se *SyntaxError
	if !errors.As(err, &se) || !errors.Is(err, ErrTooDeep) || se.Offset != max || !strings.Contains(err.Error(), "nesting deeper than 512") {
		t.Errorf("depth %d: %v", max+1, err)
	}
	objects := []byte(strings.Repeat(`{"a":`, max+1) + "nil" + strings.Repeat("}", max+1))
	if _, err := Normalize(objects); !errors.Is(err, ErrTooDeep) {
		t.Errorf("objects deeper than %d: %v", max, err)
	}
	if err := Check(objects, lenient); !errors.Is(err, ErrTooDeep) {
		t.Errorf("Check: objects deeper than %d: %v", max, err)
	}
	// Hostile depth fails fast instead of exhausting the stack.
	if _, err := Normalize(nest(1_000_000, "nil")); err == nil {
		t.Error("million-deep input accepted")
	}
	// Strict JSON needs no rewriting and is returned as it is, whatever its depth; Check
	// still holds it to the limit.
	deep := nest(max+100, "")
	if out, err := Normalize(deep); err != nil || &out[0] != &deep[0] {
		t.Errorf("strict deep input: %v", err)
	}
	if err := Check(deep, lenient); !errors.Is(err, ErrTooDeep) {
		t.Errorf("Check: strict deep input: %v", err)
	}
}
