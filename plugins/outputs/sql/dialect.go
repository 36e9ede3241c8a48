package sql

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	dialectPostgres = "postgres"
	dialectSQLite   = "sqlite"
)

// dialect holds what differs between the supported databases.
type dialect struct {
	name string
	// dollar: placeholders are $1, $2, ...; otherwise ?.
	dollar bool
	// maxParams is the most bind parameters one statement may carry.
	maxParams int
	// defaultMaxOpen applies when conn_max_open is unset.
	defaultMaxOpen int
	// convert turns a value produced by Bloblang into one the driver takes.
	convert func(any) (any, error)
}

var (
	postgresDialect = &dialect{
		name:      dialectPostgres,
		dollar:    true,
		maxParams: 65535, // the protocol's parameter count is a uint16
		convert:   postgresValue,
	}
	sqliteDialect = &dialect{
		name:           dialectSQLite,
		maxParams:      32766, // SQLITE_MAX_VARIABLE_NUMBER since 3.32
		defaultMaxOpen: 1,
		convert:        sqliteValue,
	}
)

func dialectFor(driver string) (*dialect, error) {
	switch driver {
	case "postgres", "pgx":
		return postgresDialect, nil
	case "sqlite":
		return sqliteDialect, nil
	}
	return nil, fmt.Errorf("field driver: unsupported driver %q (want postgres, pgx or sqlite)", driver)
}

// appendPlaceholder appends the n-th (1-based) bind parameter.
func (d *dialect) appendPlaceholder(b []byte, n int) []byte {
	if !d.dollar {
		return append(b, '?')
	}
	return strconv.AppendInt(append(b, '$'), int64(n), 10)
}

// appendArgs appends the converted values of row to dst. On error dst is
// returned unchanged. row itself is not modified: it may be part of the
// message.
func (d *dialect) appendArgs(dst, row []any) ([]any, error) {
	n := len(dst)
	for i, v := range row {
		c, err := d.convert(v)
		if err != nil {
			return dst[:n], fmt.Errorf("value %d: %w", i, err)
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// postgresValue leaves values to pgx, which encodes each one for the type of
// its column (maps and arrays go to json/jsonb or array columns as they
// are). Numbers read from JSON messages arrive as json.Number; sending their
// text lets the server parse them for whatever numeric or text column they
// land in, without a float64 detour that would lose big integers.
func postgresValue(v any) (any, error) {
	if n, ok := v.(json.Number); ok {
		return n.String(), nil
	}
	return v, nil
}

// sqliteValue maps values onto SQLite's storage classes: numbers become
// integers or reals, objects and arrays become JSON text (readable with
// SQLite's json functions).
func sqliteValue(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		if f, err := t.Float64(); err == nil {
			return f, nil
		}
		return t.String(), nil
	case map[string]any, []any:
		b, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	return v, nil
}

// sqliteDefaults are added to a SQLite DSN unless it already sets them:
// WAL so readers never block the writer (nor it them), a busy timeout so a
// competing writer makes us wait rather than fail, IMMEDIATE transactions so
// that wait happens at BEGIN (a deferred transaction that has to upgrade its
// lock can fail at once), and time values in a format SQLite's date
// functions read.
var sqliteDefaults = []struct {
	keys   []string // DSN keys that already decide the setting
	pragma string   // _pragma prefix that already decides it
	key    string
	value  string
}{
	{keys: []string{"_journal_mode", "_journal"}, pragma: "journal_mode", key: "_pragma", value: "journal_mode(WAL)"},
	{keys: []string{"_busy_timeout", "_timeout"}, pragma: "busy_timeout", key: "_pragma", value: "busy_timeout(5000)"},
	{keys: []string{"_txlock"}, key: "_txlock", value: "immediate"},
	{keys: []string{"_time_format", "_time_integer_format"}, key: "_time_format", value: "sqlite"},
}

// sqliteDSN adds our defaults to a SQLite DSN and finds the database file it
// names ("" for an in-memory database).
func sqliteDSN(dsn string) (openDSN, path string, err error) {
	if dsn == "" {
		return "", "", fmt.Errorf("empty sqlite DSN")
	}
	base, rawQuery, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", fmt.Errorf("sqlite DSN parameters: %w", err)
	}

	extra := url.Values{}
	for _, d := range sqliteDefaults {
		set := false
		for _, k := range d.keys {
			set = set || q.Has(k)
		}
		if d.pragma != "" {
			for _, p := range q["_pragma"] {
				set = set || strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), d.pragma)
			}
		}
		if !set {
			extra.Add(d.key, d.value)
		}
	}
	openDSN = dsn
	if len(extra) > 0 {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		openDSN = dsn + sep + extra.Encode()
	}

	if q.Get("mode") == "memory" {
		return openDSN, "", nil
	}
	path = base
	if rest, ok := strings.CutPrefix(base, "file:"); ok {
		path = rest
		if after, ok := strings.CutPrefix(rest, "//"); ok {
			// file://host/path: only an empty host or localhost is local.
			host, p, _ := strings.Cut(after, "/")
			if host != "" && host != "localhost" {
				return "", "", fmt.Errorf("sqlite DSN names a remote host %q", host)
			}
			path = "/" + p
		}
		if path, err = url.PathUnescape(path); err != nil {
			return "", "", fmt.Errorf("sqlite DSN path: %w", err)
		}
	}
	if path == "" || strings.HasPrefix(path, ":memory:") {
		return openDSN, "", nil
	}
	return openDSN, path, nil
}

// ensureParentDir creates the missing parent directories of a SQLite file,
// so a fresh checkout can point the quickstart at ./data/events.db.
func ensureParentDir(path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating directory for the sqlite database: %w", err)
	}
	return nil
}

// checkIdentifier accepts a table or column name that is safe to place in
// SQL text: up to maxParts dot-separated parts, each either a plain
// identifier (an ASCII letter or underscore, then letters, digits or
// underscores) or a double-quoted one with any inner quote doubled.
// Names come from the config, never from messages; this check turns a typo
// or a stray quote into a config error instead of broken or injected SQL.
func checkIdentifier(s string, maxParts int) error {
	if s == "" {
		return fmt.Errorf("empty identifier")
	}
	parts := 0
	for rest := s; ; {
		n, err := identifierPart(rest)
		if err != nil {
			return fmt.Errorf("invalid identifier %q: %w", s, err)
		}
		parts++
		rest = rest[n:]
		if rest == "" {
			break
		}
		if rest[0] != '.' || parts == maxParts {
			return fmt.Errorf("invalid identifier %q: want letters, digits and underscores (or a \"quoted\" name)%s", s, partsHint(maxParts))
		}
		rest = rest[1:]
	}
	return nil
}

func partsHint(maxParts int) string {
	if maxParts > 1 {
		return fmt.Sprintf(", at most %d dot-separated parts", maxParts)
	}
	return ""
}

// identifierPart returns the length of the identifier at the start of s.
func identifierPart(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty name part")
	}
	if s[0] == '"' {
		for i := 1; i < len(s); i++ {
			if s[i] == 0 {
				return 0, fmt.Errorf("NUL in quoted name")
			}
			if s[i] != '"' {
				continue
			}
			if i+1 < len(s) && s[i+1] == '"' {
				i++ // doubled quote
				continue
			}
			if i == 1 {
				return 0, fmt.Errorf("empty quoted name")
			}
			return i + 1, nil
		}
		return 0, fmt.Errorf("unterminated quoted name")
	}
	if !isIdentStart(s[0]) {
		return 0, fmt.Errorf("must start with a letter or underscore")
	}
	i := 1
	for i < len(s) && isIdentChar(s[i]) {
		i++
	}
	return i, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9')
}

// isSQLWord reports whether s is made only of identifier characters and
// single dots between them. Such text cannot end a string literal or a quoted
// name, start a comment or separate statements, wherever it is spliced into a
// query; it is what unsafe_dynamic_query lets through.
func isSQLWord(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			if !isIdentChar(part[i]) {
				return false
			}
		}
	}
	return true
}
