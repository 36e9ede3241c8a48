package mirror

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestValidName(t *testing.T) {
	for in, want := range map[string]string{
		"petitions":             "petitions",
		"Petitions":             "petitions",
		"_x1":                   "_x1",
		"local_chapter":         "local_chapter",
		strings.Repeat("a", 63): strings.Repeat("a", 63),
	} {
		if got, err := ValidName("table", in); err != nil || got != want {
			t.Errorf("ValidName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "1abc", "a-b", "a b", "a.b", `a"b`, "a;drop table x", "é", strings.Repeat("a", 64),
		"hookpipe_mirror_loads", "Hookpipe_load_x",
	} {
		if got, err := ValidName("table", in); err == nil {
			t.Errorf("ValidName(%q) = %q, want an error", in, got)
		}
	}
}

func TestReadHeaderLeavesTheFirstRow(t *testing.T) {
	cases := []struct {
		name, in string
		cols     []string
		rest     string
	}{
		{"plain", "id,slug\n1,a\n", []string{"id", "slug"}, "1,a\n"},
		{"crlf", "id,slug\r\n1,a\r\n", []string{"id", "slug"}, "1,a\r\n"},
		{"upper case and quotes", "\"ID\",\"Created_At\"\n1,x\n", []string{"id", "created_at"}, "1,x\n"},
		{"byte order mark", "\xef\xbb\xbfid,slug\n1,a\n", []string{"id", "slug"}, "1,a\n"},
		{"header only, no line end", "id,slug", []string{"id", "slug"}, ""},
		{"header only", "id,slug\n", []string{"id", "slug"}, ""},
		// A quoted newline does not end the record (the name is then refused
		// by validation, which the next case checks).
		{"data with quoted newline", "id,notes\n1,\"a\nb\"\n", []string{"id", "notes"}, "1,\"a\nb\"\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One byte at a time: the header must not depend on read sizes.
			br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(c.in)), 16)
			cols, err := readHeader(br)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cols, c.cols) {
				t.Errorf("cols %q, want %q", cols, c.cols)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != c.rest {
				t.Errorf("rest %q, want %q", rest, c.rest)
			}
		})
	}
}

func TestReadHeaderRefuses(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "no header row",
		"\n":                               "no header row",
		"id,id\n":                          "appears twice",
		"id,ID\n":                          "appears twice",
		"id,\n":                            "column name",
		"id,\"a\nb\"\n":                    "column name",
		"id,\"x\"\"; DROP TABLE t; --\"\n": "column name",
		"id,a b\n":                         "column name",
		"id,\"unterminated\n":              "CSV header",
		"id,hookpipe_seq\n":                "reserved",
	} {
		_, err := readHeader(bufio.NewReader(strings.NewReader(in)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("readHeader(%q): %v, want an error saying %q", in, err, want)
		}
	}
	long := strings.Repeat("a,", maxHeaderBytes) + "\n"
	if _, err := readHeader(bufio.NewReader(strings.NewReader(long))); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("long header: %v", err)
	}
}

func TestEndMarkerGuard(t *testing.T) {
	refused := []string{
		"\\.\n",             // right after the header
		"1,a\n\\.\n2,b\n",   // between rows
		"1,a\r\n\\.\r\n",    // CRLF
		"1,a\n\\.",          // at the very end, no line end
		"1,a\n\\.\r",        // at the very end, CR
		"1,\"x\n\\.\ny\"\n", // inside a quoted value: refused too (conservative)
	}
	passed := []string{
		"",
		"1,a\n2,b\n",
		"1,\\.\n",      // not alone on its line
		"1,a\n\\.x\n",  // more after it
		"1,a\n \\.\n",  // a space before it
		"1,a\n\"\\.\"", // quoted
	}
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":     func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	for rname, mk := range readers {
		for _, in := range refused {
			if _, err := io.ReadAll(newEndMarkerGuard(mk(in))); !errors.Is(err, errEndMarker) {
				t.Errorf("%s %q: %v, want the end marker refused", rname, in, err)
			}
		}
		for _, in := range passed {
			out, err := io.ReadAll(newEndMarkerGuard(mk(in)))
			if err != nil || string(out) != in {
				t.Errorf("%s %q: %q, %v; want it passed unchanged", rname, in, out, err)
			}
		}
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.s))
	copy(p, c.s[:k])
	c.s = c.s[k:]
	return k, nil
}

// The guard fires exactly when some line of the data is `\.` (with an
// optional CR), whatever the read sizes.
func FuzzEndMarkerGuard(f *testing.F) {
	f.Add("1,a\n\\.\n2,b\n", uint8(3))
	f.Add("\\.\r\n", uint8(1))
	f.Add("1,a\n\\.x\n", uint8(2))
	f.Add("1,\\.\n", uint8(7))
	f.Fuzz(func(t *testing.T, data string, chunk uint8) {
		want := false
		for i, line := range strings.Split("\n"+data, "\n") {
			if i > 0 && (line == `\.` || line == "\\.\r") {
				want = true
			}
		}
		out, err := io.ReadAll(newEndMarkerGuard(&chunkReader{s: data, n: int(chunk%16) + 1}))
		if got := errors.Is(err, errEndMarker); got != want {
			t.Fatalf("%q: refused %v, want %v", data, got, want)
		}
		if !want && (err != nil || string(out) != data) {
			t.Fatalf("%q: passed %q, %v", data, out, err)
		}
	})
}

// The guard sits on every byte of every load: its cost per byte.
func BenchmarkEndMarkerGuard(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 4<<20 {
		sb.WriteString("123456,petition-123456,\"Save park 56, now\",member123456@example.org,1234,99,2026-01-05T12:00:00Z,US,en-US,signed at the fair\n")
	}
	data := sb.String()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		g := newEndMarkerGuard(strings.NewReader(data))
		for {
			if _, err := g.Read(buf); err != nil {
				break
			}
		}
	}
}
