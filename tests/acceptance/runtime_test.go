//go:build integration

package acceptance

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// runtimeConfig is the smallest pipeline that serves the Go runtime's
// metrics on /metrics.
const runtimeConfig = `
http:
  address: ${HOOKPIPE_HTTP_ADDRESS}
metrics:
  prometheus:
    add_go_metrics: true
input:
  webhook_server:
    address: ${HOOKPIPE_ADDRESS}
    endpoints:
      - path: /webhooks/test
        provider: test
        auth:
          allow_unauthenticated: true
output:
  drop: {}
`

// TestGarbageCollectorTarget checks the binary's GC target as the Go runtime
// reports it: 400 unless GOGC is set, and the user's GOGC when it is.
func TestGarbageCollectorTarget(t *testing.T) {
	config := filepath.Join(t.TempDir(), "runtime.yaml")
	if err := os.WriteFile(config, []byte(runtimeConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"default", nil, "go_gc_gogc_percent 400"},
		{"GOGC set", []string{"GOGC=150"}, "go_gc_gogc_percent 150"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The test's own environment may carry GOGC: the default case
			// must not inherit it.
			t.Setenv("GOGC", "")
			os.Unsetenv("GOGC")
			hp := harness.StartHookpipe(t, config, tc.env...)
			res, err := http.Get(hp.EngineURL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(body), "\n"+tc.want+"\n") {
				var got []string
				for _, l := range strings.Split(string(body), "\n") {
					if strings.HasPrefix(l, "go_gc_gogc_percent") {
						got = append(got, l)
					}
				}
				t.Errorf("want %q in /metrics, got %q", tc.want, got)
			}
		})
	}
}
