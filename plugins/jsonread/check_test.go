package jsonread

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hookpipe/hookpipe/plugins/examples"
)

var (
	strict  = Options{}
	lenient = Options{Lenient: true}
)

func TestCheck(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	var syntax *SyntaxError
	cases := []struct {
		body string
		opt  Options
		want error // a *SyntaxError or *DuplicateKeyError stands for any error of that type
	}{
		{`{"a":1}`, strict, nil},
		{` {"a":{"a":1},"b":[{"a":1},{"a":2}]}`, strict, nil},
		{`{"a":1,"a":2}`, strict, &DuplicateKeyError{Key: "a"}},
		{`{"a":1,"\u0061":2}`, strict, &DuplicateKeyError{Key: "a"}},
		{`{"\u0061":1,"a":2}`, strict, &DuplicateKeyError{Key: "a"}},
		{`{"x":{"k":1,"j":{"k":2},"k":3}}`, strict, &DuplicateKeyError{Key: "k"}},
		{`{"a":"\"a\":","b":1}`, strict, nil},
		{`{"a":1,"b":{"a":2},"c":[{"a":3,"b":4}]}`, strict, nil},
		{`{"a":nil,}`, lenient, nil},
		{`{"a":nil,"a":1}`, lenient, &DuplicateKeyError{Key: "a"}},
		{`{"a":1 "a":2}`, lenient, &DuplicateKeyError{Key: "a"}},
		{`{"a":nil}`, strict, syntax},
		{`[1]`, strict, ErrNotObject},
		{`[{"a":1,"a":2}]`, strict, ErrNotObject},
		{`"s"`, strict, ErrNotObject},
		{`nil`, lenient, ErrNotObject},
		{`12345678901234567890123456789012345678901234567890`, strict, ErrNotObject},
		{"{\"a\":\"\xff\"}", strict, ErrNotUTF8},
		{"{\"\xc3\":1}", strict, ErrNotUTF8},
		{"{\"a\":\"\xed\xa0\x80\"}", strict, ErrNotUTF8}, // an encoded surrogate
		{`{"a":` + deep + `}`, strict, ErrTooDeep},
		{``, strict, syntax},
		{`{"a":1,"a":2}`, Options{AllowDuplicateKeys: true}, nil},
		// Which error wins: UTF-8 anywhere, then syntax, then not an object, then a duplicate.
		{"{\"a\":1,\"a\":2} \xff", strict, ErrNotUTF8},
		{"[1,\xff", strict, ErrNotUTF8},
		{"{\"a\":1,\"a\":2,", strict, syntax},
		{`{"a":1,"a":2,"b":` + deep + `}`, strict, ErrTooDeep},
		{`[{"a":1,"a":2}`, strict, syntax},
	}
	for _, c := range cases {
		for name, err := range map[string]error{
			"Check":  Check([]byte(c.body), c.opt),
			"Decode": second(Decode([]byte(c.body), c.opt)),
		} {
			var dup *DuplicateKeyError
			switch want := c.want.(type) {
			case *DuplicateKeyError:
				if !errors.As(err, &dup) || dup.Key != want.Key {
					t.Errorf("%s(%.60q): %v, want duplicate %q", name, c.body, err, want.Key)
				}
			case *SyntaxError:
				if !errors.As(err, &syntax) || errors.Is(err, ErrTooDeep) {
					t.Errorf("%s(%.60q): %v, want a syntax error", name, c.body, err)
				}
			default:
				if !errors.Is(err, c.want) {
					t.Errorf("%s(%.60q): %v, want %v", name, c.body, err, c.want)
				}
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestDuplicateKeysAfterUnescaping(t *testing.T) {
	const none = "(none)"
	for _, tc := range []struct {
		body string
		dup  string // none when the keys are all different
	}{
		{`{"é":1,"\u00e9":2}`, "é"},
		{`{"\u00E9":1,"\u00e9":2}`, "é"},
		{`{"😀":1,"\ud83d\ude00":2}`, "😀"},
		{`{"\ud83d\ude00":1,"\uD83D\uDE00":2}`, "😀"},
		// Surrogates that do not pair are U+FFFD, as in encoding/json.
		{`{"\ud800":1,"\ufffd":2}`, "\ufffd"},
		{`{"\udc00":1,"` + "\ufffd" + `":2}`, "\ufffd"},
		{`{"\ud800\ud800":1,"\ufffd\ufffd":2}`, "\ufffd\ufffd"},
		{`{"\ud800x":1,"\ufffdx":2}`, "\ufffdx"},
		{`{"a\/b":1,"a/b":2}`, "a/b"},
		{`{"\n":1,"\u000a":2}`, "\n"},
		{`{"\"":1,"\u0022":2}`, `"`},
		{`{"\\":1,"\u005c":2}`, `\`},
		{`{"\u0000":1,"":2}`, none},
		{`{"":1,"":2}`, ""},
		{`{"ab":1,"a":2,"b":3,"abc":4,"ab\u0000":5}`, none},
		{`{"\ud83d\ude00":1,"\ud83d":2}`, none},
		{`{"\ud83d\ude00":1,"\ud83d":2,"\ude00":3}`, "\ufffd"}, // both halves alone are U+FFFD
		{`{"abcdefgh12345678":1,"abcdefgh-2345678":2,"abcdefgh12345678":3}`, "abcdefgh12345678"},
		{`{"abcdefgh12345678":1,"abcdefgh12345679":2}`, none},
	} {
		for name, err := range map[string]error{
			"Check":  Check([]byte(tc.body), strict),
			"Decode": second(Decode([]byte(tc.body), strict)),
		} {
			var dup *DuplicateKeyError
			if tc.dup == none {
				if err != nil {
					t.Errorf("%s(%q): %v", name, tc.body, err)
				}
			} else if !errors.As(err, &dup) || dup.Key != tc.dup {
				t.Errorf("%s(%q): %v, want duplicate %q", name, tc.body, err, tc.dup)
			}
		}
	}
}

// The first duplicate in reading order is reported, also when an inner object, which Decode
// builds first, has one further on.
func TestFirstDuplicateReported(t *testing.T) {
	body := []byte(`{"a":1,"b":{"x":1,"y":{"q":1,"q":2},"x":2},"a":{"z":1,"z":2}}`)
	for name, err := range map[string]error{"Check": Check(body, strict), "Decode": second(Decode(body, strict))} {
		var dup *DuplicateKeyError
		if !errors.As(err, &dup) || dup.Key != "q" {
			t.Errorf("%s: %v, want q", name, err)
		}
	}
}

func TestDuplicateKeyErrorTruncatesLongKeys(t *testing.T) {
	long := strings.Repeat("k", 200)
	err := Check([]byte(`{"`+long+`":1,"`+long+`":2}`), strict)
	var dup *DuplicateKeyError
	if !errors.As(err, &dup) || dup.Key != long {
		t.Fatalf("%v", err)
	}
	want := `jsonread: the key "` + strings.Repeat("k", 64) + `..." appears twice in one object`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func manyKeys(n int, name func(int) string) []byte {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + name(i) + `":{"k":1}`)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func TestManyKeysUseASet(t *testing.T) {
	// 5000 keys from 182 distinct names.
	body := manyKeys(5000, func(i int) string { return "k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) })
	var dup *DuplicateKeyError
	if err := Check(body, strict); !errors.As(err, &dup) {
		t.Fatalf("duplicates not found: %v", err)
	}
	// Past smallObject keys, duplicates are still found, escaped or not, and distinct keys
	// still pass.
	distinct := manyKeys(3*smallObject, func(i int) string { return strings.Repeat("x", i) })
	if err := Check(distinct, strict); err != nil {
		t.Fatal(err)
	}
	for _, late := range []string{`"xxx"`, `"\u0078xx"`, `"x\u0078x"`} {
		body := append(bytes.TrimSuffix(bytes.Clone(distinct), []byte("}")), []byte(","+late+":1}")...)
		if err := Check(body, strict); !errors.As(err, &dup) || dup.Key != "xxx" {
			t.Errorf("key %s after %d others: %v", late, 3*smallObject, err)
		}
		if _, err := Decode(body, strict); !errors.As(err, &dup) || dup.Key != "xxx" {
			t.Errorf("Decode: key %s after %d others: %v", late, 3*smallObject, err)
		}
	}
	escapedFirst := manyKeys(2*smallObject, func(i int) string { return `\u0079` + strings.Repeat("y", i) })
	body = append(bytes.TrimSuffix(escapedFirst, []byte("}")), []byte(`,"yyyyy":1}`)...)
	if err := Check(body, strict); !errors.As(err, &dup) || dup.Key != "yyyyy" {
		t.Errorf("escaped keys in the set: %v", err)
	}
}

func TestDocumentedExamplesPass(t *testing.T) {
	for _, ex := range examples.All() {
		opt := Options{Lenient: ex.Provider == examples.TheCity}
		if err := Check(ex.Body, opt); err != nil {
			t.Errorf("%s/%s: %v", ex.Provider, ex.Name, err)
		}
		if json.Valid(ex.Body) {
			if err := Check(ex.Body, strict); err != nil {
				t.Errorf("%s/%s strict: %v", ex.Provider, ex.Name, err)
			}
		} else if err := Check(ex.Body, strict); err == nil {
			t.Errorf("%s/%s: not strict JSON, yet strict Check accepts it", ex.Provider, ex.Name)
		}
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	for _, ex := range examples.All() {
		opt := Options{Lenient: ex.Provider == examples.TheCity}
		if n := testing.AllocsPerRun(20, func() { _ = Check(ex.Body, opt) }); n != 0 {
			t.Errorf("%s/%s: %v allocations", ex.Provider, ex.Name, n)
		}
	}
}

func TestMaxDepth(t *testing.T) {
	nested := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
	}
	for _, tc := range []struct {
		opt   Options
		depth int
	}{{Options{}, DefaultMaxDepth}, {Options{MaxDepth: -1}, DefaultMaxDepth}, {Options{MaxDepth: 3}, 3}, {Options{MaxDepth: 40}, 40}} {
		if err := Check(nested(tc.depth), tc.opt); err != nil {
			t.Errorf("%+v, depth %d: %v", tc.opt, tc.depth, err)
		}
		if _, err := Decode(nested(tc.depth), tc.opt); err != nil {
			t.Errorf("Decode %+v, depth %d: %v", tc.opt, tc.depth, err)
		}
		for name, err := range map[string]error{
			"Check":  Check(nested(tc.depth+1), tc.opt),
			"Decode": second(Decode(nested(tc.depth+1), tc.opt)),
		} {
			var se *SyntaxError
			if !errors.Is(err, ErrTooDeep) || !errors.As(err, &se) || se.Offset != 5*tc.depth {
				t.Errorf("%s %+v, depth %d: %v", name, tc.opt, tc.depth+1, err)
			}
		}
	}
	// Arrays count as objects do, and a million levels fail fast.
	arrays := []byte(`{"a":` + strings.Repeat("[", 1_000_000) + strings.Repeat("]", 1_000_000) + `}`)
	if err := Check(arrays, strict); !errors.Is(err, ErrTooDeep) {
		t.Errorf("million-deep arrays: %v", err)
	}
	if _, err := Decode(arrays, strict); !errors.Is(err, ErrTooDeep) {
		t.Errorf("Decode million-deep arrays: %v", err)
	}
}

// refCheck is an independent statement of Check's rules for strict input, built on
// encoding/json: json.Valid for the grammar and the Decoder's token stream for nesting and for
// keys, which it unescapes itself.
func refCheck(in []byte, maxDepth int) error {
	if !utf8.Valid(in) {
		return ErrNotUTF8
	}
	type open struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*open
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
	var dup error
	dec := json.NewDecoder(bytes.NewReader(in))
	// Numbers as text: a float64 would stop the token stream at 1e700.
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			break // json.Valid below has the last word on syntax
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
			} else {
				k := tok.(string)
				if top.keys[k] && dup == nil {
					dup = &DuplicateKeyError{Key: k}
				}
				top.keys[k], top.wantKey = true, false
			}
		} else {
			switch tok {
			case json.Delim('{'), json.Delim('['):
				// The token stream so far is valid JSON, so the nesting limit comes first.
				if len(stack) >= maxDepth {
					return ErrTooDeep
				}
				o := &open{}
				if tok == json.Delim('{') {
					o.keys, o.wantKey = map[string]bool{}, true
				}
				stack = append(stack, o)
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
				valueDone()
			default:
				valueDone()
			}
		}
		if len(stack) == 0 {
			break // the first top-level value is complete
		}
	}
	if !json.Valid(in) {
		return &SyntaxError{}
	}
	if bytes.TrimLeft(in, " \t\r\n")[0] != '{' {
		return ErrNotObject
	}
	return dup
}

// sameKind reports whether two errors are the same kind of refusal.
func sameKind(got, want error) bool {
	var gs, ws *SyntaxError
	var gd, wd *DuplicateKeyError
	switch {
	case want == nil || got == nil:
		return got == want
	case errors.Is(want, ErrTooDeep):
		return errors.Is(got, ErrTooDeep)
	case errors.As(want, &ws):
		return errors.As(got, &gs) && !errors.Is(got, ErrTooDeep)
	case errors.As(want, &wd):
		return errors.As(got, &gd) && gd.Key == wd.Key
	}
	return errors.Is(got, want)
}

func TestCheckAgreesWithReference(t *testing.T) {
	for _, in := range trickyDocs {
		if got, want := Check([]byte(in), strict), refCheck([]byte(in), DefaultMaxDepth); !sameKind(got, want) {
			t.Errorf("Check(%q) = %v, reference %v", in, got, want)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, ex := range examples.All() {
		f.Add(ex.Body)
	}
	for _, s := range trickyDocs {
		f.Add([]byte(s))
	}
	for _, s := range []string{``, `nil`, `[1,]`, `{"a":1 "b":nil,}`, `[1 2]`, `{"a":1,"a":2}`, `{"a":"\u00e9\n"}`, `[[[nil]]]`, `-0.0e-0`, "{\"\xff\":1}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		errStrict := Check(in, strict)
		errLenient := Check(in, lenient)
		out, errNorm := Normalize(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("input modified")
		}

		// Strict: the reference's verdict, of the same kind.
		if want := refCheck(in, DefaultMaxDepth); !sameKind(errStrict, want) {
			t.Fatalf("strict Check = %v, reference %v", errStrict, want)
		}
		if errStrict == nil && errLenient != nil {
			t.Fatalf("lenient Check refuses what strict accepts: %v", errLenient)
		}

		// Normalize's contract: strict input back as is, anything else
		// rewritten into strict JSON, or an error only for input json.Valid refuses.
		if errNorm != nil {
			var se *SyntaxError
			if !errors.As(errNorm, &se) || se.Offset < 0 || se.Offset > len(in) {
				t.Fatalf("Normalize error %v is not a SyntaxError within the input", errNorm)
			}
			if json.Valid(in) {
				t.Fatalf("Normalize refuses input json.Valid accepts: %v", errNorm)
			}
		} else {
			if !json.Valid(out) {
				t.Fatalf("Normalize output is not valid JSON: %q", out)
			}
			if same := len(out) == len(in) && &out[0] == &in[0]; same != json.Valid(in) {
				t.Fatalf("json.Valid = %v, Normalize returned its input = %v", json.Valid(in), same)
			}
			if again, err := Normalize(out); err != nil || !bytes.Equal(again, out) {
				t.Fatalf("Normalize is not idempotent: %q -> %q (%v)", out, again, err)
			}
		}

		// Lenient: Normalize's grammar, then the strict rules on its output.
		var want error
		switch {
		case !utf8.Valid(in):
			want = ErrNotUTF8
		case errNorm != nil:
			want = errNorm
		default:
			want = refCheck(out, DefaultMaxDepth)
			var se *SyntaxError
			if errors.As(want, &se) {
				t.Fatalf("Normalize output refused by the reference: %q", out)
			}
		}
		if !sameKind(errLenient, want) {
			t.Fatalf("lenient Check = %v, want %v", errLenient, want)
		}
		// A syntax error is reported where Normalize finds it.
		var got, norm *SyntaxError
		if errors.As(errLenient, &got) && errors.As(errNorm, &norm) && got.Error() != norm.Error() {
			t.Fatalf("lenient Check: %v, Normalize: %v", got, norm)
		}
	})
}

// special looks at eight bytes at once; it must flag a word exactly when one of its bytes is
// not plain, wherever that byte is.
func TestSpecial(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			if got := SpecialWord(binary.LittleEndian.Uint64(w)); got != !plain[c] {
				t.Errorf("byte %#02x at %d: special = %v", c, pos, got)
			}
		}
	}
}
