package mirror

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/plugins/mirror/mirrortest"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://agra-data-exports.s3.amazonaws.com/default/petitions_20150803180434.csv?AWSAccessKeyId=XXX&Expires=1438711490&Signature=ABCDE%3D": "https://agra-data-exports.s3.amazonaws.com/default/petitions_20150803180434.csv",
		"https://user:pass@host.example/a/b.csv#frag":     "https://host.example/a/b.csv",
		"http://127.0.0.1:9000/x%20y.csv?X-Amz-Signature": "http://127.0.0.1:9000/x%20y.csv",
		"not a url?Signature=secret":                      "not a url",
		"%zz?Signature=secret":                            "%zz",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	allowed := []string{".amazonaws.com", "exports.example.org"}
	for raw, ok := range map[string]bool{
		"https://agra-data-exports.s3.amazonaws.com/x.csv": true,
		"https://AGRA.S3.AMAZONAWS.COM/x.csv":              true,
		"https://exports.example.org/x.csv":                true,
		"https://evil.exports.example.org/x.csv":           false,
		"https://amazonaws.com.evil.org/x.csv":             false,
		"http://127.0.0.1/x.csv":                           false,
		"http://169.254.169.254/latest/meta-data":          false,
		"ftp://exports.example.org/x.csv":                  false,
	} {
		u, _ := url.Parse(raw)
		if err := checkHost(u, allowed); (err == nil) != ok {
			t.Errorf("checkHost(%s): %v, want allowed=%v", raw, err, ok)
		}
	}
	u, _ := url.Parse("http://127.0.0.1/x.csv")
	if err := checkHost(u, nil); err != nil {
		t.Errorf("no allow list refuses %s: %v", u, err)
	}
}

func testDownloader(allowed ...string) *downloader {
	return newDownloader(HTTPConfig{ResponseHeaderTimeout: 5 * time.Second, ReadIdleTimeout: 300 * time.Millisecond, AllowedHosts: allowed})
}

func readAll(t *testing.T, d *downloader, rawURL string) (string, error) {
	t.Helper()
	b, err := d.open(context.Background(), rawURL)
	if err != nil {
		return "", err
	}
	defer b.Close()
	out, err := io.ReadAll(b)
	return string(out), err
}

func TestDownload(t *testing.T) {
	srv := mirrortest.NewServer()
	defer srv.Close()
	full := mirrortest.Fixture("petitions_full.csv")
	srv.Add("full.csv", full)
	srv.AddTruncated("cut.csv", full, 100)
	_, release := srv.AddPaused("stall.csv", full, 50)
	defer release()

	if got, err := readAll(t, testDownloader(), srv.URL("full.csv")); err != nil || got != string(full) {
		t.Fatalf("download: %v", err)
	}
	failures := map[string]struct{ url, want string }{
		"expired":   {srv.ExpiredURL("full.csv"), "status 403 Forbidden (AccessDenied)"},
		"missing":   {srv.URL("nope.csv"), "status 404 Not Found (NoSuchKey)"},
		"truncated": {srv.URL("cut.csv"), "download truncated after 100 bytes"},
		"stalled":   {srv.URL("stall.csv"), "download stalled: no data for 300ms after 50 bytes"},
		"refused":   {"http://127.0.0.1:1/x.csv?X-Amz-Signature=" + mirrortest.Signature, "connection refused"},
	}
	for name, c := range failures {
		_, err := readAll(t, testDownloader(), c.url)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
			continue
		}
		// net/http quotes the whole URL in its errors; ours never do.
		if strings.Contains(err.Error(), "X-Amz") || strings.Contains(err.Error(), mirrortest.Signature) {
			t.Errorf("%s: the error shows the query string: %v", name, err)
		}
	}

	if _, err := readAll(t, testDownloader("exports.example.org"), srv.URL("full.csv")); err == nil || !strings.Contains(err.Error(), "not in http.allowed_hosts") {
		t.Errorf("host outside the allow list: %v", err)
	}
}

func TestDownloadRedirectStaysOnAllowedHosts(t *testing.T) {
	srv := mirrortest.NewServer()
	defer srv.Close()
	srv.Add("full.csv", mirrortest.Fixture("petitions_full.csv"))
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(srv.URL("full.csv"), "127.0.0.1", "localhost", 1), http.StatusFound)
	}))
	defer redirect.Close()

	if _, err := readAll(t, testDownloader("127.0.0.1"), redirect.URL+"/x.csv"); err == nil || !strings.Contains(err.Error(), `host "localhost" is not in http.allowed_hosts`) {
		t.Errorf("redirect to another host: %v", err)
	}
	if _, err := readAll(t, testDownloader("127.0.0.1", "localhost"), redirect.URL+"/x.csv"); err != nil {
		t.Errorf("redirect to an allowed host: %v", err)
	}
}
