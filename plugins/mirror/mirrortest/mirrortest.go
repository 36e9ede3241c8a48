// Package mirrortest serves CSV exports the way ControlShift's bulk-data
// webhooks point at them (presigned S3-style URLs), for the tests and the
// benchmark of the controlshift_table_mirror processor: CSV fixtures, a
// generator of large files, and an HTTP server that can refuse, truncate or
// pause a download.
package mirrortest

import (
	"bufio"
	"embed"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Fixtures holds the CSV fixtures under fixtures/:
//
//   - petitions_full.csv: CRLF line ends, quoted commas, a quoted CRLF inside
//     a value, UTF-8, escaped quotes, an unquoted empty field (NULL) and a
//     quoted one ("", the empty string);
//   - petitions_incremental.csv: updates id 2, adds id 4 twice (the later
//     row wins) and a new column, category;
//   - header_only.csv, malformed.csv (an unterminated quote), no_id.csv,
//     bad_header.csv (a column name carrying SQL), end_marker.csv (a `\.`
//     line).
//
//go:embed fixtures/*.csv
var Fixtures embed.FS

// Fixture returns one fixture's bytes.
func Fixture(name string) []byte {
	b, err := Fixtures.ReadFile("fixtures/" + name)
	if err != nil {
		panic(err)
	}
	return b
}

// Signature is the presigned credential the server accepts; a URL with any
// other X-Amz-Signature is refused with 403, as S3 refuses an expired one.
const Signature = "d2f1e0c0ffee5ecret"

// Server serves files under /exports/<name> to URLs carrying a valid
// presigned-style query string.
type Server struct {
	*httptest.Server

	mu    sync.Mutex
	files map[string]file
	// Requests counts the requests that reached a file.
	Requests atomic.Int64
}

type file struct {
	data     []byte
	path     string        // served from disk when set
	cutAt    int           // >0: declare the full length, send this many bytes, close
	pauseAt  int           // >0: send this many bytes, then wait for release
	release  chan struct{} // closed to let a paused download finish
	reachedP chan struct{} // closed when the pause point is reached
}

// NewServer starts a server on 127.0.0.1; Close it when done.
func NewServer() *Server {
	s := &Server{files: map[string]file{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Add serves data as name.
func (s *Server) Add(name string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = file{data: data}
}

// AddFile serves the file at path as name, streamed from disk.
func (s *Server) AddFile(name, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = file{path: path}
}

// AddTruncated serves data as name with its full Content-Length but closes
// the connection after cut bytes, like a transfer cut off mid-body.
func (s *Server) AddTruncated(name string, data []byte, cut int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = file{data: data, cutAt: cut}
}

// AddPaused serves data as name but stops after at bytes until release is
// called. reached is closed once the first bytes are sent.
func (s *Server) AddPaused(name string, data []byte, at int) (reached <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := file{data: data, pauseAt: at, release: make(chan struct{}), reachedP: make(chan struct{})}
	s.files[name] = f
	var once sync.Once
	return f.reachedP, func() { once.Do(func() { close(f.release) }) }
}

// URL is the presigned-style URL of name.
func (s *Server) URL(name string) string {
	return s.urlWith(name, Signature)
}

// ExpiredURL is a URL of name whose signature the server refuses (403).
func (s *Server) ExpiredURL(name string) string {
	return s.urlWith(name, "expired0signature")
}

func (s *Server) urlWith(name, sig string) string {
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "AKIATESTKEY/20260101/us-east-1/s3/aws4_request")
	q.Set("X-Amz-Expires", "3600")
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("X-Amz-Signature", sig)
	return s.Server.URL + "/exports/" + name + "?" + q.Encode()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/exports/") {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("X-Amz-Signature") != Signature {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
		return
	}
	s.mu.Lock()
	f, ok := s.files[strings.TrimPrefix(r.URL.Path, "/exports/")]
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>`)
		return
	}
	s.Requests.Add(1)
	w.Header().Set("Content-Type", "text/csv")
	switch {
	case f.path != "":
		http.ServeFile(w, r, f.path)
	case f.cutAt > 0:
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		w.WriteHeader(http.StatusOK)
		w.Write(f.data[:f.cutAt])
		w.(http.Flusher).Flush()
		// Cut the connection mid-body.
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	case f.pauseAt > 0:
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		w.WriteHeader(http.StatusOK)
		w.Write(f.data[:f.pauseAt])
		w.(http.Flusher).Flush()
		close(f.reachedP)
		select {
		case <-f.release:
		case <-r.Context().Done():
			return
		}
		w.Write(f.data[f.pauseAt:])
	default:
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		w.Write(f.data)
	}
}

// GeneratedHeader is the header of WriteRows's files: ten columns.
const GeneratedHeader = "id,slug,title,email,goal,signature_count,created_at,country,locale,notes"

// Row is the i-th data row of a generated file (without line end). Every
// tenth row has an empty notes field (NULL); every seventh a quoted title
// with a comma.
func Row(i int) string {
	return string(appendRow(nil, i))
}

func appendRow(b []byte, i int) []byte {
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ",petition-"...)
	b = strconv.AppendInt(b, int64(i), 10)
	if i%7 == 0 {
		b = append(b, `,"Save park `...)
		b = strconv.AppendInt(b, int64(i%1000), 10)
		b = append(b, `, now"`...)
	} else {
		b = append(b, ",Save park "...)
		b = strconv.AppendInt(b, int64(i%1000), 10)
	}
	b = append(b, ",member"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "@example.org,"...)
	b = strconv.AppendInt(b, int64(100+i%5000), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(i%9973), 10)
	b = append(b, ",2026-01-"...)
	d := 1 + i%28
	if d < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(d), 10)
	b = append(b, "T12:00:00Z,"...)
	b = append(b, [...]string{"US", "GB", "AU", "DE", "FR"}[i%5]...)
	b = append(b, ",en-"...)
	b = append(b, [...]string{"US", "GB", "AU", "DE", "FR"}[i%5]...)
	b = append(b, ',')
	if i%10 != 0 {
		b = append(b, "signed at the fair"...)
	}
	return b
}

// WriteRows writes a CSV file of GeneratedHeader and rows data rows,
// ids 1..rows.
func WriteRows(w io.Writer, rows int) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if _, err := bw.WriteString(GeneratedHeader + "\n"); err != nil {
		return err
	}
	var line []byte
	for i := 1; i <= rows; i++ {
		line = append(appendRow(line[:0], i), '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteRowsFile writes WriteRows's file to path and returns its size.
func WriteRowsFile(path string, rows int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	if err := WriteRows(f, rows); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Describe is a short description of a generated file, for logs.
func Describe(rows int, size int64) string {
	return fmt.Sprintf("%d rows × 10 columns, %.1f MB", rows, float64(size)/1e6)
}
