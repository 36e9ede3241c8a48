package sql

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestCheckIdentifier(t *testing.T) {
	cases := []struct {
		in       string
		maxParts int
		ok       bool
	}{
		{"events", 1, true},
		{"_events_2", 1, true},
		{"Events", 1, true},
		{"hookpipe.events", 2, true},
		{"hookpipe.events", 1, false},
		{"a.b.c", 2, false},
		{`"order"`, 1, true},
		{`"weird ""name"""`, 1, true},
		{`hookpipe."Events"`, 2, true},
		{"", 1, false},
		{"2events", 1, false},
		{"events;", 1, false},
		{"events; DROP TABLE x", 1, false},
		{"id, payload", 1, false},
		{"a b", 1, false},
		{"ev-ents", 1, false},
		{"a.", 2, false},
		{".a", 2, false},
		{`"unterminated`, 1, false},
		{`""`, 1, false},
		{`"a"b`, 1, false},
		{`"a" --`, 1, false},
		{"événements", 1, false},
		{"a\x00", 1, false},
	}
	for _, c := range cases {
		err := checkIdentifier(c.in, c.maxParts)
		if (err == nil) != c.ok {
			t.Errorf("checkIdentifier(%q, %d) = %v, want ok=%v", c.in, c.maxParts, err, c.ok)
		}
	}
}

func TestIsSQLWord(t *testing.T) {
	for _, s := range []string{"events", "events_2024", "3", "hookpipe.events", "_"} {
		if !isSQLWord(s) {
			t.Errorf("isSQLWord(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "a b", "a'b", `a"b`, "a;b", "a--b", "a/*", "a..b", ".a", "a.", "$1", "a\nb", "é"} {
		if isSQLWord(s) {
			t.Errorf("isSQLWord(%q) = true, want false", s)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	if got := string(postgresDialect.appendPlaceholder(nil, 12)); got != "$12" {
		t.Errorf("postgres placeholder = %q", got)
	}
	if got := string(sqliteDialect.appendPlaceholder(nil, 12)); got != "?" {
		t.Errorf("sqlite placeholder = %q", got)
	}
}

func TestValueConversion(t *testing.T) {
	row := []any{json.Number("42"), json.Number("1.5"), map[string]any{"a": "b"}, []any{"x", json.Number("1")}, "s", nil, true}

	pg, err := postgresDialect.appendArgs(nil, row)
	if err != nil {
		t.Fatal(err)
	}
	if pg[0] != "42" || pg[1] != "1.5" {
		t.Errorf("postgres numbers = %#v %#v, want their text", pg[0], pg[1])
	}
	if _, ok := pg[2].(map[string]any); !ok {
		t.Errorf("postgres map converted to %T, want it left for pgx", pg[2])
	}

	lite, err := sqliteDialect.appendArgs([]any{"kept"}, row)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"kept", int64(42), 1.5, `{"a":"b"}`, `["x",1]`, "s", nil, true}
	if len(lite) != len(want) {
		t.Fatalf("sqlite args = %#v", lite)
	}
	for i := range want {
		if lite[i] != want[i] {
			t.Errorf("sqlite arg %d = %#v, want %#v", i, lite[i], want[i])
		}
	}
	if row[0] != json.Number("42") {
		t.Errorf("the mapped row was modified: %#v", row[0])
	}
}

func TestSQLiteDSN(t *testing.T) {
	cases := []struct {
		dsn      string
		path     string
		has      []string // parameters expected in the opened DSN
		hasNot   []string
		startsAs string
	}{
		{
			dsn:  "file:./data/events.db",
			path: "./data/events.db",
			has:  []string{"_pragma=journal_mode(WAL)", "_pragma=busy_timeout(5000)", "_txlock=immediate", "_time_format=sqlite"},
		},
		{
			dsn:      "/var/lib/hookpipe/events.db",
			path:     "/var/lib/hookpipe/events.db",
			has:      []string{"_txlock=immediate"},
			startsAs: "/var/lib/hookpipe/events.db?",
		},
		{
			dsn:    "file:/tmp/x.db?_pragma=journal_mode(DELETE)&_busy_timeout=100&_txlock=deferred&_time_integer_format=unix",
			path:   "/tmp/x.db",
			has:    []string{"_pragma=journal_mode(DELETE)", "_busy_timeout=100", "_txlock=deferred"},
			hasNot: []string{"journal_mode(WAL)", "busy_timeout(5000)", "_txlock=immediate", "_time_format"},
		},
		{
			dsn:    "file:/tmp/x.db?_pragma=Busy_Timeout=9",
			path:   "/tmp/x.db",
			hasNot: []string{"busy_timeout(5000)"},
		},
		{dsn: "file:///srv/events%20db.sqlite", path: "/srv/events db.sqlite"},
		{dsn: "file://localhost/srv/e.db", path: "/srv/e.db"},
		{dsn: ":memory:", path: ""},
		{dsn: "file::memory:?cache=shared", path: ""},
		{dsn: "file:events?mode=memory", path: ""},
	}
	for _, c := range cases {
		open, path, err := sqliteDSN(c.dsn)
		if err != nil {
			t.Errorf("sqliteDSN(%q): %v", c.dsn, err)
			continue
		}
		if path != c.path {
			t.Errorf("sqliteDSN(%q) path = %q, want %q", c.dsn, path, c.path)
		}
		_, q, _ := strings.Cut(open, "?")
		decoded, err := url.QueryUnescape(q)
		if err != nil {
			t.Errorf("sqliteDSN(%q) query %q: %v", c.dsn, q, err)
		}
		for _, h := range c.has {
			if !strings.Contains(decoded, h) {
				t.Errorf("sqliteDSN(%q) = %q, missing %q", c.dsn, decoded, h)
			}
		}
		for _, h := range c.hasNot {
			if strings.Contains(decoded, h) {
				t.Errorf("sqliteDSN(%q) = %q, should not contain %q", c.dsn, decoded, h)
			}
		}
		if c.startsAs != "" && !strings.HasPrefix(open, c.startsAs) {
			t.Errorf("sqliteDSN(%q) = %q, want prefix %q", c.dsn, open, c.startsAs)
		}
	}

	for _, bad := range []string{"", "file://example.com/x.db", "file:/x.db?a=%zz"} {
		if _, _, err := sqliteDSN(bad); err == nil {
			t.Errorf("sqliteDSN(%q) accepted", bad)
		}
	}
}
