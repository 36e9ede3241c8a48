package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// HTTPConfig are the download settings.
type HTTPConfig struct {
	// ResponseHeaderTimeout bounds the wait for the response headers.
	ResponseHeaderTimeout time.Duration
	// ReadIdleTimeout aborts a download that delivers no byte for this long.
	ReadIdleTimeout time.Duration
	// AllowedHosts, when not empty, are the only hosts (exact, or a suffix
	// starting with a dot) a URL may point at.
	AllowedHosts []string
}

// RedactURL is the URL as it may appear in logs, errors and the load
// table: scheme, host and path. A presigned URL carries its credentials in
// the query string, so the query, the fragment and any user info go.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		// Unparseable: keep what precedes a query string at most.
		s, _, _ := strings.Cut(raw, "?")
		s, _, _ = strings.Cut(s, "#")
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			s = s[i+1:]
		}
		return s
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// downloader fetches export files.
type downloader struct {
	client *http.Client
	conf   HTTPConfig
}

func newDownloader(conf HTTPConfig) *downloader {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = conf.ResponseHeaderTimeout
	return &downloader{
		conf: conf,
		client: &http.Client{
			Transport: tr,
			// A presigned URL is fetched as given; a redirect is followed
			// only to an allowed host.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				return checkHost(req.URL, conf.AllowedHosts)
			},
		},
	}
}

func checkHost(u *url.URL, allowed []string) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	if len(allowed) == 0 {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	if slices.ContainsFunc(allowed, func(a string) bool {
		a = strings.ToLower(a)
		return host == a || (strings.HasPrefix(a, ".") && strings.HasSuffix(host, a))
	}) {
		return nil
	}
	return fmt.Errorf("host %q is not in http.allowed_hosts", host)
}

// body is a download in progress.
type body struct {
	rc        io.ReadCloser
	want      int64 // Content-Length, -1 when unknown
	n         int64 // bytes read so far
	idle      *time.Timer
	idleAfter time.Duration
	stalled   atomic.Bool
	cancel    context.CancelFunc
}

// open starts the download of rawURL. The error never contains the query
// string: errors of net/http quote the whole URL, so they are unwrapped.
func (d *downloader) open(ctx context.Context, rawURL string) (*body, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("the URL does not parse")
	}
	if err := checkHost(u, d.conf.AllowedHosts); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		cancel()
		return nil, errors.New("the URL is not a valid request URL")
	}
	res, err := d.client.Do(req)
	if err != nil {
		cancel()
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() {
			return nil, fmt.Errorf("no response within %s", d.conf.ResponseHeaderTimeout)
		}
		return nil, fmt.Errorf("request failed: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		// The start of an S3 error body says why (AccessDenied, expired
		// request); it names no credential.
		snippet, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		res.Body.Close()
		cancel()
		return nil, fmt.Errorf("status %s%s", res.Status, s3ErrorCode(snippet))
	}
	b := &body{rc: res.Body, want: res.ContentLength, idleAfter: d.conf.ReadIdleTimeout, cancel: cancel}
	if b.idleAfter > 0 {
		b.idle = time.AfterFunc(b.idleAfter, func() {
			b.stalled.Store(true)
			cancel()
		})
	}
	return b, nil
}

// s3ErrorCode picks the <Code> of an S3-style XML error body, if any.
func s3ErrorCode(b []byte) string {
	s := string(b)
	i := strings.Index(s, "<Code>")
	j := strings.Index(s, "</Code>")
	if i < 0 || j <= i+6 || j-i > 100 {
		return ""
	}
	return " (" + s[i+6:j] + ")"
}

// Read implements io.Reader. A body shorter than its Content-Length, a
// connection cut mid-body and a stall all end in an error, never in io.EOF,
// so COPY is aborted and the load rolled back.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if n > 0 && b.idle != nil {
		b.idle.Reset(b.idleAfter)
	}
	switch {
	case err == io.EOF:
		if b.want >= 0 && b.n != b.want {
			return n, fmt.Errorf("download truncated: %d of %d bytes", b.n, b.want)
		}
	case err != nil:
		if b.stalled.Load() {
			return n, fmt.Errorf("download stalled: no data for %s after %d bytes", b.idleAfter, b.n)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return n, fmt.Errorf("download truncated after %d bytes (connection closed early)", b.n)
		}
		return n, fmt.Errorf("download failed after %d bytes: %w", b.n, err)
	}
	return n, err
}

// Close releases the connection.
func (b *body) Close() error {
	if b.idle != nil {
		b.idle.Stop()
	}
	b.cancel()
	return b.rc.Close()
}
