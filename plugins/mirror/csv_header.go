package mirror

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// identPattern is what a table or column name must look like once
// lower-cased. Names come from the webhook payload and the CSV header, so
// nothing else may reach SQL, even quoted.
var identPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// reservedPrefix marks the names hookpipe uses for its own tables and
// columns inside the mirror schema.
const reservedPrefix = "hookpipe_"

// maxHeaderBytes bounds the header line, which is the only part of a file
// held in memory.
const maxHeaderBytes = 1 << 20

// ValidName lower-cases name and checks that it can be used as a table or
// column name of the mirror.
func ValidName(kind, name string) (string, error) {
	n := strings.ToLower(name)
	if !identPattern.MatchString(n) {
		return "", fmt.Errorf("%s name %q is not allowed: it must match %s", kind, name, identPattern)
	}
	if strings.HasPrefix(n, reservedPrefix) {
		return "", fmt.Errorf("%s name %q is not allowed: the prefix %q is reserved for hookpipe", kind, name, reservedPrefix)
	}
	return n, nil
}

// typePattern accepts SQL type names such as `bigint`, `numeric(12, 2)`,
// `timestamp with time zone` or `text[]`: words, one list of numbers in
// parentheses and an array suffix; nothing that could end a statement.
var typePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_ ]*(\([0-9, ]+\))?( ?\[\])?$`)

// readHeader reads the first CSV record from r, consuming exactly its bytes
// and its line end, so that r is left at the first data row for COPY. It
// returns the validated, lower-cased column names.
func readHeader(r *bufio.Reader) ([]string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxHeaderBytes {
			return nil, fmt.Errorf("CSV header is longer than %d bytes", maxHeaderBytes)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		// A newline inside a quoted name does not end the record: the
		// record is complete once its quotes are balanced.
		if bytes.Count(line, []byte{'"'})%2 == 0 || err == io.EOF {
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, errors.New("CSV has no header row")
	}
	cr := csv.NewReader(bytes.NewReader(line))
	cr.FieldsPerRecord = -1
	names, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	seen := make(map[string]bool, len(names))
	cols := make([]string, len(names))
	for i, name := range names {
		c, err := ValidName("column", name)
		if err != nil {
			return nil, fmt.Errorf("CSV header: %w", err)
		}
		if seen[c] {
			return nil, fmt.Errorf("CSV header: column %q appears twice", c)
		}
		seen[c] = true
		cols[i] = c
	}
	return cols, nil
}

// endMarkerGuard passes COPY data through unchanged but fails on a line that
// is exactly `\.`: Postgres's COPY FROM STDIN takes that line as the end of
// the data and would silently ignore every row after it. The check is
// conservative (it also fires inside a quoted multi-line value), so a file
// is refused rather than loaded short.
type endMarkerGuard struct {
	r    io.Reader
	tail []byte // the last bytes seen, to find a marker split across reads
	win  []byte
}

var errEndMarker = errors.New(`CSV contains a line "\." that COPY would take as the end of the data`)

func newEndMarkerGuard(r io.Reader) *endMarkerGuard {
	// The header ended with a line end, so the data starts a line.
	return &endMarkerGuard{r: r, tail: []byte{'\n'}}
}

func hasEndMarker(b []byte) bool {
	return bytes.Contains(b, []byte("\n\\.\n")) || bytes.Contains(b, []byte("\n\\.\r\n"))
}

func (g *endMarkerGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if n > 0 {
		data := p[:n]
		// A marker is at most 5 bytes: the last 4 bytes before this read
		// and the first 4 of it cover every marker that spans the two.
		g.win = append(append(g.win[:0], g.tail...), data[:min(n, 4)]...)
		if hasEndMarker(g.win) || hasEndMarker(data) {
			return 0, errEndMarker
		}
		if n >= 4 {
			g.tail = append(g.tail[:0], data[n-4:]...)
		} else {
			g.win = append(append(g.win[:0], g.tail...), data...)
			g.tail = append(g.tail[:0], g.win[max(0, len(g.win)-4):]...)
		}
	}
	if err == io.EOF && (bytes.HasSuffix(g.tail, []byte("\n\\.")) || bytes.HasSuffix(g.tail, []byte("\n\\.\r"))) {
		return 0, errEndMarker
	}
	return n, err
}
