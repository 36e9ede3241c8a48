package s3

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// isolateAWSEnv keeps the developer's or CI's AWS settings out of a test.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	empty := t.TempDir() + "/empty"
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		t.Setenv(k, empty)
	}
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CA_BUNDLE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
	}
}

func parseOutput(t *testing.T, conf string) (*output, error) {
	t.Helper()
	pConf, err := outputSpec().ParseYAML(conf, nil)
	if err != nil {
		return nil, err
	}
	maxInFlight, err := pConf.FieldMaxInFlight()
	if err != nil {
		return nil, err
	}
	return newOutput(pConf, service.MockResources(), maxInFlight)
}

func mustOutput(t *testing.T, conf string) *output {
	t.Helper()
	o, err := parseOutput(t, conf)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return o
}

func TestConfigDefaults(t *testing.T) {
	isolateAWSEnv(t)
	pConf, err := outputSpec().ParseYAML(`bucket: events`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := pConf.FieldMaxInFlight(); n != 64 {
		t.Errorf("max_in_flight default %d, want 64", n)
	}
	policy, err := pConf.FieldBatchPolicy(fieldBatching)
	if err != nil || !policy.IsNoop() {
		t.Errorf("batching default should be a no-op policy, got %+v (%v)", policy, err)
	}

	o := mustOutput(t, `bucket: events`)
	if o.bucket != "events" || o.pathStyle || o.timeout != 5*time.Second || o.endpoint != "" {
		t.Errorf("bucket=%q path_style=%v timeout=%v endpoint=%q", o.bucket, o.pathStyle, o.timeout, o.endpoint)
	}
	if o.awsConf.Region != defaultRegion {
		t.Errorf("region %q, want %q when nothing names one", o.awsConf.Region, defaultRegion)
	}

	batch := service.MessageBatch{service.NewMessage([]byte("x"))}
	in, err := o.putInput(batch, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Default path: counter and nanosecond clock, as "<n>-<ns>.txt".
	var n, ns int64
	if _, err := fmt.Sscanf(*in.Key, "%d-%d.txt", &n, &ns); err != nil || n != 1 || !strings.HasSuffix(*in.Key, ".txt") {
		t.Errorf("default key %q", *in.Key)
	}
	if in.ContentType == nil || *in.ContentType != "application/octet-stream" {
		t.Errorf("content type %v", in.ContentType)
	}
	if in.StorageClass != types.StorageClassStandard {
		t.Errorf("storage class %q", in.StorageClass)
	}
	for name, p := range map[string]*string{
		"content_encoding": in.ContentEncoding, "cache_control": in.CacheControl,
		"content_disposition": in.ContentDisposition, "content_language": in.ContentLanguage,
		"website_redirect_location": in.WebsiteRedirectLocation, "tagging": in.Tagging, "kms": in.SSEKMSKeyId,
	} {
		if p != nil {
			t.Errorf("%s sent by default: %q", name, *p)
		}
	}
	if in.ServerSideEncryption != "" || in.ChecksumAlgorithm != "" || in.ACL != "" {
		t.Errorf("sse=%q checksum=%q acl=%q by default", in.ServerSideEncryption, in.ChecksumAlgorithm, in.ACL)
	}
	if in.Metadata != nil {
		t.Errorf("metadata %v for a message without any", in.Metadata)
	}
}

func TestConfigRejects(t *testing.T) {
	isolateAWSEnv(t)
	for _, c := range []struct{ name, conf, errPart string }{
		{"no bucket", `path: x`, "bucket"},
		{"empty bucket", `bucket: ""`, "bucket must not be empty"},
		{"bad acl", "bucket: b\nobject_canned_acl: everyone", "canned ACL"},
		{"zero timeout", "bucket: b\ntimeout: 0s", "timeout must be positive"},
		{"bad interpolation", "bucket: b\npath: '${! json( }'", "path"},
		{"id without secret", "bucket: b\ncredentials:\n  id: AKIDEXAMPLE", "credentials.secret"},
		{"tcp keepalive rule", "bucket: b\ntcp:\n  tcp_user_timeout: 30s\n  keep_alive:\n    idle: 10s", "keep_alive.idle"},
		{"unknown profile", "bucket: b\ncredentials:\n  profile: nosuchprofile", "nosuchprofile"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseOutput(t, c.conf)
			if err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("error %v, want one mentioning %q", err, c.errPart)
			}
		})
	}
}

func TestPutInputFromMessage(t *testing.T) {
	isolateAWSEnv(t)
	o := mustOutput(t, `
bucket: events
path: 'type=${! json("type") }/${! json("id") }.json'
content_type: application/cloudevents+json
content_encoding: '${! meta("enc") }'
cache_control: no-cache
content_disposition: 'attachment; filename="${! json("id") }.json"'
content_language: en
website_redirect_location: /elsewhere
storage_class: '${! meta("class") }'
kms_key_id: key-1
checksum_algorithm: SHA256
object_canned_acl: bucket-owner-full-control
tags:
  type: '${! json("type") }'
  a b: 'x&y=z'
metadata:
  exclude_prefixes: [ s3_, X-City ]
`)
	m := service.NewMessage([]byte(`{"id":"e1","type":"users.create"}`))
	m.MetaSetMut("enc", "gzip")
	m.MetaSetMut("class", "STANDARD_IA")
	m.MetaSetMut("webhook_provider", "thecity")
	m.MetaSetMut("s3_partition", "p")
	m.MetaSetMut("X-City-Webhook-Signature", "sig")
	in, err := o.putInput(service.MessageBatch{m}, 0)
	if err != nil {
		t.Fatal(err)
	}

	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	for _, c := range []struct{ name, got, want string }{
		{"bucket", str(in.Bucket), "events"},
		{"key", str(in.Key), "type=users.create/e1.json"},
		{"content type", str(in.ContentType), "application/cloudevents+json"},
		{"content encoding", str(in.ContentEncoding), "gzip"},
		{"cache control", str(in.CacheControl), "no-cache"},
		{"content disposition", str(in.ContentDisposition), `attachment; filename="e1.json"`},
		{"content language", str(in.ContentLanguage), "en"},
		{"redirect", str(in.WebsiteRedirectLocation), "/elsewhere"},
		{"storage class", string(in.StorageClass), "STANDARD_IA"},
		{"sse", string(in.ServerSideEncryption), "aws:kms"},
		{"kms key", str(in.SSEKMSKeyId), "key-1"},
		{"checksum", string(in.ChecksumAlgorithm), "SHA256"},
		{"acl", string(in.ACL), "bucket-owner-full-control"},
		// Sorted by key, both sides query-escaped.
		{"tagging", str(in.Tagging), "a+b=x%26y%3Dz&type=users.create"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if len(in.Metadata) != 3 || in.Metadata["webhook_provider"] != "thecity" || in.Metadata["enc"] != "gzip" || in.Metadata["class"] != "STANDARD_IA" {
		t.Errorf("metadata %v", in.Metadata)
	}
	body, _ := io.ReadAll(in.Body)
	if string(body) != `{"id":"e1","type":"users.create"}` || in.ContentLength == nil || *in.ContentLength != int64(len(body)) {
		t.Errorf("body %q length %v", body, in.ContentLength)
	}
}

func TestPutInputServerSideEncryptionOverridesKMSDefault(t *testing.T) {
	isolateAWSEnv(t)
	o := mustOutput(t, "bucket: b\nkms_key_id: k\nserver_side_encryption: aws:kms:dsse")
	in, err := o.putInput(service.MessageBatch{service.NewMessage(nil)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if in.ServerSideEncryption != "aws:kms:dsse" || *in.SSEKMSKeyId != "k" {
		t.Errorf("sse %q key %v", in.ServerSideEncryption, in.SSEKMSKeyId)
	}
}

func TestPutInputMessageErrors(t *testing.T) {
	isolateAWSEnv(t)
	o := mustOutput(t, "bucket: b\npath: '${! json(\"id\") }'\ntags:\n  t: '${! json(\"t\").number() }'")
	for name, body := range map[string]string{
		"path not resolvable": `not json`,
		"key empty":           `{"id":"//","t":1}`,
		"tag not resolvable":  `{"id":"a","t":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := o.putInput(service.MessageBatch{service.NewMessage([]byte(body))}, 0)
			if err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestCleanKey(t *testing.T) {
	for _, c := range []struct {
		in, want string
		changed  bool
	}{
		{"a/b/c.json", "a/b/c.json", false},
		{"provider=x/type=y/date=2026-03-04/id.ndjson", "provider=x/type=y/date=2026-03-04/id.ndjson", false},
		{"a..b/c..", "a..b/c..", false},
		{".hidden/...", ".hidden/...", false},
		{"/abs/key", "abs/key", true},
		{"///abs", "abs", true},
		{"../x", "%2E%2E/x", true},
		{"a/../../etc/passwd", "a/%2E%2E/%2E%2E/etc/passwd", true},
		{"a/./b", "a/%2E/b", true},
		{"a/..", "a/%2E%2E", true},
		{"..", "%2E%2E", true},
		{`a\..\..\x`, `a\%2E%2E\%2E%2E\x`, true},
		{"/../x", "%2E%2E/x", true},
		{"a//b", "a//b", false},
		{"", "", false},
		{"/", "", true},
	} {
		got, changed := cleanKey(c.in)
		if got != c.want || changed != c.changed {
			t.Errorf("cleanKey(%q) = %q, %v; want %q, %v", c.in, got, changed, c.want, c.changed)
		}
	}
}

func FuzzCleanKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "/a/./b", `a\..\b`, "..", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, _ := cleanKey(s)
		if strings.HasPrefix(k, "/") {
			t.Fatalf("%q -> %q starts with /", s, k)
		}
		for _, seg := range strings.FieldsFunc(k, func(r rune) bool { return r == '/' || r == '\\' }) {
			if seg == "." || seg == ".." {
				t.Fatalf("%q -> %q keeps segment %q", s, k, seg)
			}
		}
		if again, changed := cleanKey(k); again != k || changed {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, k, again)
		}
	})
}

func TestObjectMetadata(t *testing.T) {
	pConf, err := service.NewConfigSpec().Field(service.NewMetadataExcludeFilterField("metadata")).
		ParseYAML("metadata:\n  exclude_prefixes: [ s3_, http_ ]", nil)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := pConf.FieldMetadataExcludeFilter("metadata")
	if err != nil {
		t.Fatal(err)
	}
	m := service.NewMessage(nil)
	m.MetaSetMut("webhook_provider", "controlshift")
	m.MetaSetMut("s3_partition", "excluded")
	m.MetaSetMut("http_method", "excluded")
	m.MetaSetMut("note", "café")
	m.MetaSetMut("multi", "a\r\nb")
	m.MetaSetMut("bad key", "dropped")
	m.MetaSetMut("bad:key", "dropped")
	m.MetaSetMut("count", 3)

	got := objectMetadata(filter, m)
	want := map[string]string{
		"webhook_provider": "controlshift",
		"note":             "=?UTF-8?q?caf=C3=A9?=",
		"multi":            "=?UTF-8?q?a=0D=0Ab?=",
		"count":            "3",
	}
	if len(got) != len(want) {
		t.Errorf("metadata %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	pConf, err = service.NewConfigSpec().Field(service.NewMetadataExcludeFilterField("metadata")).ParseYAML("metadata: {}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := pConf.FieldMetadataExcludeFilter("metadata"); len(objectMetadata(all, m)) != 6 {
		t.Errorf("with no exclusions every valid key is sent, got %v", objectMetadata(all, m))
	}
	if md := objectMetadata(filter, service.NewMessage(nil)); md != nil {
		t.Errorf("no metadata should send none, got %v", md)
	}
}

func responseErr(status int, code string) error {
	var err error = &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: "test"},
	}}
	return fmt.Errorf("operation error S3: PutObject: %w", err)
}

func TestServerError(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"invalid argument", responseErr(400, "InvalidArgument"), false},
		{"metadata too large", responseErr(400, "MetadataTooLarge"), false},
		{"invalid tag", responseErr(400, "InvalidTag"), false},
		{"too large", responseErr(413, "EntityTooLarge"), false},
		{"connection refused", fmt.Errorf("send: %w", errors.New("dial tcp: connection refused")), true},
		{"deadline", fmt.Errorf("put: %w", errors.New("context deadline exceeded")), true},
		{"server error", responseErr(500, "InternalError"), true},
		{"unavailable", responseErr(503, "SlowDown"), true},
		{"denied", responseErr(403, "AccessDenied"), true},
		{"no bucket", responseErr(404, "NoSuchBucket"), true},
		{"throttled", responseErr(429, "TooManyRequests"), true},
		{"request timeout", responseErr(400, "RequestTimeout"), true},
		{"expired token", responseErr(400, "ExpiredToken"), true},
		{"redirect", responseErr(301, "PermanentRedirect"), true},
	} {
		if got := serverError(c.err); got != c.want {
			t.Errorf("%s: serverError = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWriteBatchNotConnected(t *testing.T) {
	isolateAWSEnv(t)
	o := mustOutput(t, "bucket: b")
	if err := o.WriteBatch(t.Context(), service.MessageBatch{service.NewMessage(nil)}); !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("write before connect: %v", err)
	}
}

// closedEndpoint is an address on this machine where nothing listens: a
// server that is down.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// failingServer is an S3 endpoint that answers HEAD with 200 and every PUT
// with 503: a server that is reached but cannot store.
func failingServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodHead {
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `<Error><Code>ServiceUnavailable</Code><Message>down for maintenance</Message></Error>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func serverConf(endpoint string, maxInFlight int) string {
	return fmt.Sprintf(`
bucket: b
endpoint: %s
force_path_style_urls: true
path: '${! json("id") }'
timeout: 2s
max_in_flight: %d
credentials:
  id: AKIDEXAMPLE
  secret: test-secret
`, endpoint, maxInFlight)
}

// A server that answers but fails: the first failed PUT stops the rest of
// the batch; a message that fails on its own does not stop the next one from
// being tried. One slot (max_in_flight: 1) makes the order of attempts
// deterministic.
func TestWriteBatchServerFails(t *testing.T) {
	isolateAWSEnv(t)
	endpoint := failingServer(t)
	msg := func(s string) *service.Message { return service.NewMessage([]byte(s)) }
	for _, c := range []struct {
		name        string
		maxInFlight int
		batch       service.MessageBatch
		want        []string // a fragment of each message's error
	}{
		{"failure stops the batch", 1,
			service.MessageBatch{msg(`{"id":"a"}`), msg(`{"id":"b"}`), msg(`{"id":"c"}`)},
			[]string{"StatusCode: 503", "not attempted", "not attempted"}},
		{"message error does not", 1,
			service.MessageBatch{msg(`not json`), msg(`{"id":"b"}`), msg(`{"id":"c"}`)},
			[]string{"path interpolation", "StatusCode: 503", "not attempted"}},
		{"shared keys are written in order", 64,
			service.MessageBatch{msg(`{"id":"a"}`), msg(`{"id":"a"}`), msg(`{"id":"c"}`)},
			[]string{"StatusCode: 503", "not attempted", "not attempted"}},
		{"concurrent writes all fail", 64,
			service.MessageBatch{msg(`{"id":"a"}`), msg(`{"id":"b"}`), msg(`{"id":"c"}`), msg(`not json`)},
			[]string{"s3://b/a", "s3://b/", "s3://b/", "path"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := mustOutput(t, serverConf(endpoint, c.maxInFlight))
			if err := o.Connect(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer o.Close(t.Context())

			err := o.WriteBatch(t.Context(), c.batch)
			if errors.Is(err, service.ErrNotConnected) {
				t.Fatalf("a server that answers was reported unreachable: %v", err)
			}
			var batchErr *service.BatchError
			if !errors.As(err, &batchErr) {
				t.Fatalf("want a batch error, got %v", err)
			}
			if n := batchErr.IndexedErrors(); n != len(c.batch) {
				t.Errorf("%d messages failed, want %d", n, len(c.batch))
			}
			batchErr.WalkMessages(func(i int, _ *service.Message, err error) bool {
				if err == nil || !strings.Contains(err.Error(), c.want[i]) {
					t.Errorf("message %d: error %v, want one mentioning %q", i, err, c.want[i])
				}
				if err != nil && strings.Count(err.Error(), "not attempted") > 1 {
					t.Errorf("message %d: error wrapped more than once: %v", i, err)
				}
				return true
			})
		})
	}

	// A batch of one reports its plain error.
	o := mustOutput(t, serverConf(endpoint, 64))
	if err := o.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	err := o.WriteBatch(t.Context(), service.MessageBatch{msg(`{"id":"a"}`)})
	var batchErr *service.BatchError
	if err == nil || errors.As(err, &batchErr) || errors.Is(err, service.ErrNotConnected) || !strings.Contains(err.Error(), "StatusCode: 503") {
		t.Errorf("single message: %v", err)
	}
}

// A server that gives no answer at all: Connect fails, and a batch none of
// whose PUTs was answered is reported as service.ErrNotConnected (the engine
// holds it and reconnects) with the cause kept, whatever its messages.
func TestWriteBatchServerDown(t *testing.T) {
	isolateAWSEnv(t)
	o := mustOutput(t, serverConf(closedEndpoint(t), 1))
	if err := o.Connect(t.Context()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Connect with the server down: %v, want connection refused", err)
	}
	defer o.Close(t.Context())
	msg := func(s string) *service.Message { return service.NewMessage([]byte(s)) }
	for name, batch := range map[string]service.MessageBatch{
		"one message":          {msg(`{"id":"a"}`)},
		"several":              {msg(`{"id":"a"}`), msg(`{"id":"b"}`)},
		"with a message error": {msg(`not json`), msg(`{"id":"b"}`)},
	} {
		err := o.WriteBatch(t.Context(), batch)
		if !errors.Is(err, service.ErrNotConnected) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s: %v, want not connected (connection refused)", name, err)
		}
	}
	// Nothing to send: no request, no outage to report.
	if err := o.WriteBatch(t.Context(), service.MessageBatch{msg(`not json`)}); errors.Is(err, service.ErrNotConnected) || err == nil {
		t.Errorf("a batch that sent nothing: %v", err)
	}
}

// A batch that keeps finding the server unreachable right after it answered
// a Connect (here: a server that answers HEAD but drops every PUT) is failed
// after maxStrikes reconnects instead of being held for ever.
func TestWriteBatchStrikesOut(t *testing.T) {
	isolateAWSEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer srv.Close()
	o := mustOutput(t, serverConf(srv.URL, 1))
	defer o.Close(t.Context())
	batch := service.MessageBatch{service.NewMessage([]byte(`{"id":"a"}`))}
	held := 0
	for range maxStrikes + 2 {
		if err := o.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		err := o.WriteBatch(t.Context(), batch)
		if err == nil {
			t.Fatal("a dropped PUT was acknowledged")
		}
		if !errors.Is(err, service.ErrNotConnected) {
			break
		}
		held++
	}
	if held != maxStrikes {
		t.Fatalf("the batch was held %d times, want %d before it fails", held, maxStrikes)
	}
}

// The documented NDJSON example builds, and its mapping and path produce the
// keys the documentation describes while leaving the event's bytes as they are.
func TestExampleNDJSON(t *testing.T) {
	isolateAWSEnv(t)
	b := service.NewStreamBuilder()
	if err := b.SetYAML(exampleNDJSON); err != nil {
		t.Fatalf("example does not lint: %v", err)
	}
	if _, err := b.Build(); err != nil {
		t.Fatalf("example does not build: %v", err)
	}

	var doc struct {
		Pipeline struct {
			Processors []struct {
				Mapping string `yaml:"mapping"`
			} `yaml:"processors"`
		} `yaml:"pipeline"`
		Output struct {
			S3 struct {
				Path string `yaml:"path"`
			} `yaml:"aws_s3"`
		} `yaml:"output"`
	}
	if err := yaml.Unmarshal([]byte(exampleNDJSON), &doc); err != nil {
		t.Fatal(err)
	}
	exe, err := bloblang.Parse(doc.Pipeline.Processors[0].Mapping)
	if err != nil {
		t.Fatal(err)
	}
	path, err := service.NewInterpolatedString(doc.Output.S3.Path)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ provider, event, key string }{
		{"controlshift", `{"specversion":"1.0","id":"cs-1","type":"controlshift.petition.created","time":"2026-03-04T10:00:00Z"}`,
			"provider=controlshift/type=controlshift.petition.created/date=2026-03-04/cs-1.ndjson"},
		// Dates are UTC days whatever the offset of the event time.
		{"thecity", `{"id":"tc-1","type":"thecity.users.create","time":"2026-03-05T00:30:00+01:00"}`,
			"provider=thecity/type=thecity.users.create/date=2026-03-04/tc-1.ndjson"},
		{"thecity", `{"id":"tc-2","type":"thecity.users.create","time":"2026-03-05T08:00:00.123456Z"}`,
			"provider=thecity/type=thecity.users.create/date=2026-03-05/tc-2.ndjson"},
	} {
		in := service.NewMessage([]byte(c.event))
		in.MetaSetMut("webhook_provider", c.provider)
		out, err := in.BloblangQuery(exe)
		if err != nil {
			t.Fatalf("%s: %v", c.event, err)
		}
		if body, _ := out.AsBytes(); string(body) != c.event {
			t.Errorf("mapping changed the event bytes: %s", body)
		}
		key, err := path.TryString(out)
		if err != nil {
			t.Fatal(err)
		}
		if key != c.key {
			t.Errorf("key %q, want %q", key, c.key)
		}
	}
}

func TestExampleLocalServer(t *testing.T) {
	isolateAWSEnv(t)
	b := service.NewStreamBuilder()
	b.SetEnvVarLookupFunc(func(k string) (string, bool) { return "test-" + k, true })
	if err := b.SetYAML(exampleLocalServer); err != nil {
		t.Fatalf("example does not lint: %v", err)
	}
	if _, err := b.Build(); err != nil {
		t.Fatalf("example does not build: %v", err)
	}
}

func BenchmarkPutInput(b *testing.B) {
	b.Setenv("AWS_CONFIG_FILE", b.TempDir()+"/none")
	b.Setenv("AWS_SHARED_CREDENTIALS_FILE", b.TempDir()+"/none")
	pConf, err := outputSpec().ParseYAML(`
bucket: events
path: '${! meta("s3_partition") }/${! meta("s3_id") }.ndjson'
content_type: application/x-ndjson
metadata:
  exclude_prefixes: [ s3_ ]
tags:
  provider: '${! meta("webhook_provider") }'
`, nil)
	if err != nil {
		b.Fatal(err)
	}
	o, err := newOutput(pConf, service.MockResources(), 64)
	if err != nil {
		b.Fatal(err)
	}
	m := service.NewMessage([]byte(strings.Repeat(`{"specversion":"1.0","id":"x","type":"t"}`+"\n", 100)))
	m.MetaSetMut("webhook_provider", "thecity")
	m.MetaSetMut("s3_partition", "provider=thecity/type=thecity.users.create/date=2026-03-04")
	m.MetaSetMut("s3_id", "tc-1")
	batch := service.MessageBatch{m}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.putInput(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCleanKey(b *testing.B) {
	for _, k := range []string{
		"provider=thecity/type=thecity.users.create/date=2026-03-04/tc-1.ndjson",
		"provider=thecity/type=thecity.users.create/date=2026-03-04/../../tc-1.ndjson",
	} {
		b.Run(fmt.Sprintf("changed=%v", strings.Contains(k, "..")), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cleanKey(k)
			}
		})
	}
}
