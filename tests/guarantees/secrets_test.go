//go:build integration

package guarantees

import (
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// Secrets never reach logs (at debug level), replies, metrics or `hookpipe
// echo`, whether the request carried the right secret or a wrong one.
func TestSecretsStayOutOfLogsMetricsAndEcho(t *testing.T) {
	const (
		password = "s3cret-Password-7f1e"
		previous = "s3cret-Previous-91ab"
		city     = "s3cret-City-0c2d"
		wrong    = "s3cret-Wrong-55aa"
	)
	env := []string{
		"CONTROLSHIFT_PASSWORD=" + password, "CONTROLSHIFT_PASSWORD_PREVIOUS=" + previous,
		"THECITY_SECRET=" + city, "HOOKPIPE_LOG_LEVEL=TRACE",
		"HOOKPIPE_SQLITE_DSN=file:" + filepath.Join(t.TempDir(), "hookpipe.db"),
	}
	hp := harness.StartHookpipe(t, "configs/quickstart.yaml", env...)
	ex := distinctDeliveries(t, 2)
	var replies strings.Builder
	for _, c := range []struct {
		path   string
		body   []byte
		header map[string]string
	}{
		{ex[0].Path, ex[0].Body, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("controlshift:"+password))}},
		{ex[0].Path, ex[0].Body, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("controlshift:"+wrong))}},
		{ex[1].Path, ex[1].Body, map[string]string{"X-City-Webhook-Signature": city}},
		{ex[1].Path, ex[1].Body, map[string]string{"X-City-Webhook-Signature": wrong}},
		{"/webhooks/controlshift/" + wrong, ex[0].Body, nil},
	} {
		_, body := hp.Post(t, c.path, c.body, c.header)
		replies.WriteString(body)
	}
	res, err := http.Get(hp.EngineURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(metrics), "webhook_auth_failures_total") {
		t.Fatalf("/metrics lacks the auth failure counter:\n%.2000s", metrics)
	}
	if err := hp.Terminate(t, 20e9); err != nil {
		t.Fatal(err)
	}
	logs, err := os.ReadFile(hp.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "Rejected delivery") {
		t.Fatalf("the trace-level log shows no rejected delivery; is the level applied?\n%.2000s", logs)
	}
	echo := exec.Command(harness.HookpipeBinary(t), "echo", "configs/quickstart.yaml")
	echo.Dir = harness.RepoRoot()
	echo.Env = append(os.Environ(), env...)
	echoed, err := echo.CombinedOutput()
	if err != nil {
		t.Fatalf("hookpipe echo: %v\n%s", err, echoed)
	}
	for name, text := range map[string]string{"replies": replies.String(), "metrics": string(metrics), "logs": string(logs), "echo": string(echoed)} {
		for _, secret := range []string{password, previous, city, wrong} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contain a secret", name)
			}
		}
	}
}
