package jsonread

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/examples"
)

// The documents the webhook hot path reads most: ControlShift's signature.created (most of
// the traffic) and a City body of typical size, read leniently as The City's endpoint does.
// Each runs next to encoding/json doing the same job, so the ratios come from one run.
var benchDocs = []struct {
	provider, name string
	opt            Options
}{
	{examples.ControlShift, "signature.created", Options{}},
	{examples.TheCity, "users_update", Options{Lenient: true}},
}

func benchBody(b *testing.B, provider, name string) []byte {
	ex, ok := examples.Get(provider, name)
	if !ok {
		b.Fatalf("example %s missing", name)
	}
	if !json.Valid(ex.Body) {
		b.Fatalf("example %s is not strict JSON", name)
	}
	return ex.Body
}

func BenchmarkCheck(b *testing.B) {
	for _, doc := range benchDocs {
		in := benchBody(b, doc.provider, doc.name)
		b.Run(doc.name+"/jsonread.Check", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Check(in, doc.opt); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(doc.name+"/json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(in) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, doc := range benchDocs {
		in := benchBody(b, doc.provider, doc.name)
		b.Run(doc.name+"/jsonread.Decode", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(in, doc.opt); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(doc.name+"/json.Unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				var v any
				if err := json.Unmarshal(in, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(doc.name+"/json.Decoder.UseNumber", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				dec := json.NewDecoder(bytes.NewReader(in))
				dec.UseNumber()
				var v any
				if err := dec.Decode(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeLenient reads a City body that is not strict JSON, against the way it was
// read before: rewritten by Normalize, then decoded by encoding/json.
func BenchmarkDecodeLenient(b *testing.B) {
	ex, _ := examples.Get(examples.TheCity, "checkins_check_out")
	in := ex.Body
	b.Run("jsonread.Decode", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(in, Options{Lenient: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Normalize+json.Decoder.UseNumber", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			out, err := Normalize(in)
			if err != nil {
				b.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, name := range []string{"petition.launched", "checkins_check_out"} {
		provider := examples.ControlShift
		if name == "checkins_check_out" {
			provider = examples.TheCity
		}
		ex, _ := examples.Get(provider, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(ex.Body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Normalize(ex.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
