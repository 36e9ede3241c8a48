package jsonbody

import (
	"errors"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/examples"
)

func TestCheck(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	cases := []struct {
		body    string
		lenient bool
		want    error
	}{
		{`{"a":1}`, false, nil},
		{` {"a":{"a":1},"b":[{"a":1},{"a":2}]}`, false, nil},
		{`{"a":1,"a":2}`, false, &DuplicateKeyError{Key: "a"}},
		{`{"a":1,"\u0061":2}`, false, &DuplicateKeyError{Key: "a"}},
		{`{"x":{"k":1,"j":{"k":2},"k":3}}`, false, &DuplicateKeyError{Key: "k"}},
		{`{"a":"\"a\":","b":1}`, false, nil},
		{`{"a":nil,}`, true, nil},
		{`{"a":nil,"a":1}`, true, &DuplicateKeyError{Key: "a"}},
		{`{"a":nil}`, false, ErrNotJSON},
		{`[1]`, false, ErrNotObject},
		{`"s"`, false, ErrNotObject},
		{`12345678901234567890123456789012345678901234567890`, false, ErrNotObject},
		{"{\"a\":\"\xff\"}", false, ErrNotUTF8},
		{`{"a":` + deep + `}`, false, ErrNotJSON},
		{``, false, ErrNotJSON},
	}
	for _, c := range cases {
		err := Check([]byte(c.body), c.lenient)
		var dup *DuplicateKeyError
		switch want := c.want.(type) {
		case *DuplicateKeyError:
			if !errors.As(err, &dup) || dup.Key != want.Key {
				t.Errorf("%.60q: %v, want duplicate %q", c.body, err, want.Key)
			}
		default:
			if !errors.Is(err, c.want) {
				t.Errorf("%.60q: %v, want %v", c.body, err, c.want)
			}
		}
	}
}

func TestManyKeysUseASet(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `":1`)
	}
	b.WriteString("}")
	if _, dup := DuplicateKey([]byte(b.String())); !dup {
		t.Fatal("5000 keys from 182 distinct names: duplicates not found")
	}
}

func TestDocumentedExamplesPass(t *testing.T) {
	for _, ex := range examples.All() {
		if err := Check(ex.Body, ex.Provider == examples.TheCity); err != nil {
			t.Errorf("%s/%s: %v", ex.Provider, ex.Name, err)
		}
	}
}

func FuzzDuplicateKey(f *testing.F) {
	for _, ex := range examples.All() {
		f.Add(ex.Body)
	}
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Check(b, true)
		_ = Check(b, false)
	})
}

func BenchmarkCheck(b *testing.B) {
	ex, _ := examples.Get(examples.ControlShift, "signature.created")
	b.ReportAllocs()
	b.SetBytes(int64(len(ex.Body)))
	for b.Loop() {
		if err := Check(ex.Body, false); err != nil {
			b.Fatal(err)
		}
	}
}
