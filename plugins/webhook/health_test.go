package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/health"
)

const openEndpoint = `
endpoints:
  - path: /hook
    provider: test
    auth: { allow_unauthenticated: true }
`

// health reads a health path: its status and reply.
func healthOf(t *testing.T, addr, path string) (int, map[string]any) {
	t.Helper()
	res, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &body)
	return res.StatusCode, body
}

// waitReadiness polls the readiness path until it answers want, or fails
// the test after 10 s.
func waitReadiness(t *testing.T, addr string, want int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := healthOf(t, addr, "/readyz")
		if status == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d %v, want %d", status, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func postHook(t *testing.T, addr string) int {
	t.Helper()
	res, err := http.Post("http://"+addr+"/hook", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func TestHealthEndpoints(t *testing.T) {
	addr, got := startInput(t, "address: %s"+openEndpoint, "")
	if status, body := healthOf(t, addr, "/healthz"); status != 200 || body["status"] != "ok" {
		t.Errorf("/healthz: %d %v", status, body)
	}
	waitReadiness(t, addr, 200)
	// Deliveries go on and readiness holds: the engine calls ReadBatch many
	// times, and none of that reads as a shutdown.
	for range 5 {
		if s := postHook(t, addr); s != 200 {
			t.Fatalf("delivery: %d", s)
		}
	}
	if status, body := healthOf(t, addr, "/readyz"); status != 200 || body["status"] != "ready" {
		t.Errorf("/readyz after deliveries: %d %v", status, body)
	}
	if got.count() != 5 {
		t.Errorf("%d written, want 5 (health requests are not deliveries)", got.count())
	}

	res, err := http.Post("http://"+addr+"/healthz", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /healthz: %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	res, err = http.Head("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("HEAD /readyz: %d", res.StatusCode)
	}
}

func TestHealthPathsConfigurable(t *testing.T) {
	addr, _ := startInput(t, `address: %s
health:
  liveness_path: /live
  readiness_path: ""`+openEndpoint, "")
	if status, _ := healthOf(t, addr, "/live"); status != 200 {
		t.Errorf("/live: %d", status)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, _ := healthOf(t, addr, p); status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404 (not served)", p, status)
		}
	}
}

// Readiness fails while the pipeline does not take queued requests, and
// recovers once it does.
func TestReadinessFailsWhilePipelineStalls(t *testing.T) {
	addr, got := startInput(t, `address: %s
timeout: 20s
health:
  stall_after: 200ms`+openEndpoint, `
pipeline:
  threads: 1
  processors:
    - sleep:
        duration: 1500ms
`)
	waitReadiness(t, addr, 200)
	var wg sync.WaitGroup
	statuses := make(chan int, 3)
	for range 3 {
		wg.Go(func() { statuses <- postHook(t, addr) })
		time.Sleep(50 * time.Millisecond)
	}
	body := waitReadiness(t, addr, 503)
	if !strings.Contains(asJSON(body), "pipeline not taking requests") {
		t.Errorf("reasons %v", body)
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Errorf("a delivery behind the stall answered %d", s)
		}
	}
	waitReadiness(t, addr, 200)
	if got.count() != 3 {
		t.Errorf("%d written, want 3", got.count())
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// probedSink is an output that adds a readiness probe the way hookpipe's SQL
// and S3 outputs do; the test decides whether its "server" answers.
type probedSink struct {
	recordingSink
	remove func()
}

func (p *probedSink) Close(context.Context) error { p.remove(); return nil }

// Readiness follows the sink probes that outputs of the same stream register:
// it fails while one fails, even with no traffic, and recovers with it.
func TestReadinessFollowsSinkProbes(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	register := func(env *service.Environment) {
		err := env.RegisterBatchOutput("probed_sink", service.NewConfigSpec(),
			func(_ *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
				remove := health.For(mgr).Add(health.ComponentName("probed_sink", mgr), func(context.Context) error {
					if down.Load() {
						return errors.New("connection refused")
					}
					return nil
				})
				return &probedSink{recordingSink: recordingSink{got: &received{}}, remove: remove}, service.BatchPolicy{}, 1, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	addr, _, _ := startInputStream(t, `address: %s
health:
  probe_interval: 50ms`+openEndpoint, `
output:
  probed_sink: {}
`, register)

	body := waitReadiness(t, addr, 503)
	if !strings.Contains(asJSON(body), "sink unreachable") || strings.Contains(asJSON(body), "probed_sink") {
		t.Errorf("reasons %v: want a general reason that names no component", body)
	}
	if status, _ := healthOf(t, addr, "/healthz"); status != 200 {
		t.Errorf("liveness followed the sink: %d", status)
	}
	down.Store(false)
	waitReadiness(t, addr, 200)
	down.Store(true)
	waitReadiness(t, addr, 503)
	down.Store(false)
	waitReadiness(t, addr, 200)
}

// When the engine stops reading, a request still queued is answered 503 at
// once (it will never be taken), readiness fails, and a request already in
// the pipeline still gets its true answer.
func TestStopAnswersQueuedRequestsAtOnce(t *testing.T) {
	addr, got, stream := startInputStream(t, `address: %s
timeout: 30s`+openEndpoint, `
pipeline:
  threads: 1
  processors:
    - sleep:
        duration: 3s
`, nil)
	waitReadiness(t, addr, 200)
	type answer struct {
		name   string
		status int
	}
	answers := make(chan answer, 3)
	for _, name := range []string{"in the pipeline", "taken, not delivered", "queued"} {
		go func() { answers <- answer{name, postHook(t, addr)} }()
		time.Sleep(200 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stopped <- stream.Stop(ctx)
	}()

	first := <-answers
	if first.name != "queued" || first.status != 503 {
		t.Fatalf("first answer after the stop: %+v, want the queued request's 503", first)
	}
	if status, body := healthOf(t, addr, "/readyz"); status != 503 || !strings.Contains(asJSON(body), "shutting down") {
		t.Errorf("/readyz while stopping: %d %v", status, body)
	}
	rest := map[string]int{}
	for range 2 {
		a := <-answers
		rest[a.name] = a.status
	}
	if rest["in the pipeline"] != 200 || rest["taken, not delivered"] != 503 {
		t.Errorf("answers %v", rest)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got.count() != 1 {
		t.Errorf("%d written, want 1 (only the request answered 200)", got.count())
	}
}
