package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 environment: when HOOKPIPE_TEST_S3_ENDPOINT is set (for example
// http://127.0.0.1:9000) that server is used with the two keys below;
// otherwise versitygw is started for the test.
const (
	envS3Endpoint  = "HOOKPIPE_TEST_S3_ENDPOINT"
	envS3AccessKey = "HOOKPIPE_TEST_S3_ACCESS_KEY"
	envS3SecretKey = "HOOKPIPE_TEST_S3_SECRET_KEY"

	versitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
)

// S3Server is an S3-compatible server for a test, with its own client to read
// back what the code under test wrote. That client is minio-go, not the AWS
// SDK the outputs use, so a write is checked by an independent
// implementation of the protocol.
type S3Server struct {
	Endpoint  string // base URL, e.g. http://127.0.0.1:7070
	AccessKey string
	SecretKey string
	Region    string

	client *minio.Client

	// Set only for a server this harness started (see LocalS3).
	bin     string
	dir     string
	addr    string
	cmd     *exec.Cmd
	logPath string
}

// S3Object is an object as read back by the independent client.
type S3Object struct {
	Key          string
	Body         []byte
	ContentType  string
	StorageClass string
	Header       map[string][]string // the GET response headers
	Metadata     map[string]string   // user metadata, keys lower-cased without x-amz-meta-
	Tags         map[string]string
}

// S3 returns the S3 server named by HOOKPIPE_TEST_S3_ENDPOINT, or else a
// versitygw started for this test (see LocalS3).
func S3(t testing.TB) *S3Server {
	t.Helper()
	endpoint := os.Getenv(envS3Endpoint)
	if endpoint == "" {
		return LocalS3(t)
	}
	s := &S3Server{
		Endpoint:  strings.TrimRight(endpoint, "/"),
		AccessKey: os.Getenv(envS3AccessKey),
		SecretKey: os.Getenv(envS3SecretKey),
		Region:    "us-east-1",
	}
	if s.AccessKey == "" || s.SecretKey == "" {
		t.Fatalf("harness: %s is set but %s or %s is empty", envS3Endpoint, envS3AccessKey, envS3SecretKey)
	}
	s.client = s.newClient(t)
	if err := s.waitReady(10 * time.Second); err != nil {
		t.Fatalf("harness: S3 server %s not usable: %v", s.Endpoint, err)
	}
	return s
}

// LocalS3 always starts versitygw (POSIX backend in a temp dir) on a free
// 127.0.0.1 port, with fresh random root keys, and stops it when the test
// ends. Tests that stop and restart the server need this one: a server named
// by the environment cannot be restarted by the harness.
func LocalS3(t testing.TB) *S3Server {
	t.Helper()
	s := &S3Server{
		AccessKey: "hookpipe" + randomHex(t, 6),
		SecretKey: randomHex(t, 20),
		Region:    "us-east-1",
		bin:       findVersitygw(t),
		dir:       t.TempDir(),
		addr:      "127.0.0.1:" + strconv.Itoa(FreePort(t)),
	}
	s.Endpoint = "http://" + s.addr
	s.client = s.newClient(t)
	s.Start(t)
	return s
}

func findVersitygw(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimRight(string(out), "\r\n"), "\n")
		if len(lines) == 2 {
			if gobin := strings.TrimSpace(lines[0]); gobin != "" {
				dirs = append(dirs, gobin)
			}
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Fatalf("harness: versitygw not found on PATH nor in %v; install it with: %s", dirs, versitygwInstall)
	return ""
}

// Start starts the harness's versitygw, on the same port and data directory
// as before when it is a restart, and waits until it answers S3 requests.
func (s *S3Server) Start(t testing.TB) {
	t.Helper()
	if s.bin == "" {
		t.Fatalf("harness: the S3 server at %s was not started by the harness and cannot be started; use LocalS3", s.Endpoint)
	}
	if s.cmd != nil {
		t.Fatalf("harness: versitygw is already running")
	}
	cmd := exec.Command(s.bin, "--port", s.addr, "--quiet", "posix", s.dir)
	cmd.Env = append(os.Environ(),
		"ROOT_ACCESS_KEY="+s.AccessKey,
		"ROOT_SECRET_KEY="+s.SecretKey,
		"VGW_REGION="+s.Region,
	)
	s.logPath = StartProcess(t, "versitygw", cmd)
	s.cmd = cmd
	if err := WaitTCP(s.addr, 15*time.Second); err != nil {
		t.Fatalf("harness: versitygw: %v\n%s", err, TailFile(s.logPath, 2000))
	}
	if err := s.waitReady(10 * time.Second); err != nil {
		t.Fatalf("harness: versitygw does not answer S3 requests: %v\n%s", err, TailFile(s.logPath, 2000))
	}
}

// Stop kills the harness's versitygw, as an outage would, keeping its data
// for a later Start.
func (s *S3Server) Stop(t testing.TB) {
	t.Helper()
	if s.bin == "" {
		t.Fatalf("harness: the S3 server at %s was not started by the harness and cannot be stopped; use LocalS3", s.Endpoint)
	}
	if s.cmd == nil {
		t.Fatalf("harness: versitygw is not running")
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// LogTail returns the end of the harness's versitygw log, for failure messages.
func (s *S3Server) LogTail() string {
	if s.logPath == "" {
		return "(no log: server not started by the harness)"
	}
	return TailFile(s.logPath, 4000)
}

// Client is the independent minio-go client bound to this server.
func (s *S3Server) Client() *minio.Client { return s.client }

func (s *S3Server) newClient(t testing.TB) *minio.Client {
	t.Helper()
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Host == "" {
		t.Fatalf("harness: bad S3 endpoint %q: %v", s.Endpoint, err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatalf("harness: S3 client: %v", err)
	}
	return c
}

func (s *S3Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CreateBucket creates a bucket; one that already exists and is ours is fine.
func (s *S3Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region})
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" {
			return
		}
		t.Fatalf("harness: creating bucket %s: %v", name, err)
	}
}

// ListObjects returns the sorted keys of every object under prefix.
func (s *S3Server) ListObjects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	for obj := range s.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("harness: listing s3://%s/%s: %v", bucket, prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	sort.Strings(keys)
	return keys
}

// GetObject reads an object with its headers, user metadata and tags.
func (s *S3Server) GetObject(t testing.TB, bucket, key string) S3Object {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obj, err := s.client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("harness: getting s3://%s/%s: %v", bucket, key, err)
	}
	defer obj.Close()
	body, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("harness: reading s3://%s/%s: %v", bucket, key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		t.Fatalf("harness: stat s3://%s/%s: %v", bucket, key, err)
	}
	out := S3Object{
		Key:          key,
		Body:         body,
		ContentType:  info.ContentType,
		StorageClass: info.StorageClass,
		Header:       info.Metadata,
		Metadata:     map[string]string{},
	}
	for k, v := range info.Metadata {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-meta-") && len(v) > 0 {
			out.Metadata[strings.TrimPrefix(lk, "x-amz-meta-")] = v[0]
		}
	}
	tags, err := s.client.GetObjectTagging(ctx, bucket, key, minio.GetObjectTaggingOptions{})
	if err != nil {
		var resp minio.ErrorResponse
		if !errors.As(err, &resp) || resp.Code != "NoSuchTagSet" {
			t.Fatalf("harness: tags of s3://%s/%s: %v", bucket, key, err)
		}
	} else {
		out.Tags = tags.ToMap()
	}
	return out
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("harness: random: %v", err)
	}
	return hex.EncodeToString(b)
}
