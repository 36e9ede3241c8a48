package harness

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// HookpipeBinary builds cmd/hookpipe once per test process and returns its
// path. HOOKPIPE_BIN names a prebuilt binary instead.
func HookpipeBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HOOKPIPE_BIN"); p != "" {
		return p
	}
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hookpipe-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "hookpipe")
		cmd := exec.Command("go", "build", "-o", binaryPath, "./cmd/hookpipe")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build ./cmd/hookpipe: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatalf("harness: %v", binaryErr)
	}
	return binaryPath
}

// Hookpipe is a running `hookpipe run` process.
type Hookpipe struct {
	// URL is the base URL of the webhook listener, e.g. http://127.0.0.1:41234.
	URL string
	// EngineURL is the base URL of the engine's HTTP server (/ping, /ready, /metrics).
	EngineURL string
	Cmd       *exec.Cmd
	LogPath   string
	done      chan error
	args      []string
	env       []string
}

// StartHookpipe runs `hookpipe run <config>` from the repository root with
// HOOKPIPE_ADDRESS and HOOKPIPE_HTTP_ADDRESS set to free ports plus env, and
// waits until the webhook listener accepts connections. The process is
// stopped when the test ends.
func StartHookpipe(t testing.TB, config string, env ...string) *Hookpipe {
	t.Helper()
	bin := HookpipeBinary(t)
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	engine := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	h := &Hookpipe{
		URL:       "http://" + addr,
		EngineURL: "http://" + engine,
		args:      []string{bin, "run", config},
		env:       append(append(os.Environ(), "HOOKPIPE_ADDRESS="+addr, "HOOKPIPE_HTTP_ADDRESS="+engine), env...),
	}
	h.start(t)
	return h
}

func (h *Hookpipe) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(h.args[0], h.args[1:]...)
	cmd.Dir = RepoRoot()
	cmd.Env = h.env
	h.Cmd, h.done = cmd, make(chan error, 1)
	h.LogPath = StartProcess(t, "hookpipe", cmd)
	go func() { h.done <- cmd.Wait() }()
	addr := h.URL[len("http://"):]
	if err := WaitTCP(addr, 30*time.Second); err != nil {
		t.Fatalf("harness: hookpipe did not start: %v\n%s", err, TailFile(h.LogPath, 4000))
	}
	// Ready means the sinks connected too (their tables exist). A config
	// without the readiness check answers 404, and a TLS listener answers a
	// plain-HTTP probe with 400: both are taken as ready, the port is open.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-h.done:
			h.done <- err
			t.Fatalf("harness: hookpipe exited while starting (%v)\n%s", err, TailFile(h.LogPath, 4000))
		default:
		}
		res, err := http.Get(h.URL + "/readyz")
		if err == nil {
			res.Body.Close()
			// Only hookpipe's own replies count (JSON; its 404 carries a
			// request id): a port taken by another process must not pass.
			json := res.Header.Get("Content-Type") == "application/json"
			switch {
			case res.StatusCode == http.StatusOK && json,
				res.StatusCode == http.StatusNotFound && res.Header.Get("X-Request-Id") != "",
				res.StatusCode == http.StatusBadRequest:
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: hookpipe did not become ready: %v\n%s", err, TailFile(h.LogPath, 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends the process with SIGKILL: no shutdown, no flush.
func (h *Hookpipe) Kill(t testing.TB) {
	t.Helper()
	_ = h.Cmd.Process.Kill()
	<-h.done
}

// Restart starts the same config again on the same addresses.
func (h *Hookpipe) Restart(t testing.TB) {
	t.Helper()
	h.start(t)
}

// Terminate sends SIGTERM and waits for the process to exit, returning its
// exit error (nil for a clean exit).
func (h *Hookpipe) Terminate(t testing.TB, timeout time.Duration) error {
	t.Helper()
	_ = h.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-h.done:
		return err
	case <-time.After(timeout):
		_ = h.Cmd.Process.Kill()
		t.Fatalf("hookpipe did not exit within %s of SIGTERM\n%s", timeout, TailFile(h.LogPath, 4000))
		return nil
	}
}

// Post sends one webhook and returns the status code and body.
func (h *Hookpipe) Post(t testing.TB, path string, body []byte, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res.StatusCode, b.String()
}
