//go:build integration

package guarantees

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// A rolling restart: SIGTERM while deliveries keep coming, with the config's
// shutdown_delay. Readiness on the webhook listener fails first, deliveries
// go on being served and written during the delay (no burst of 503s or
// refusals while a load balancer is still noticing), then the stream stops,
// every delivery gets its true answer, and the process exits 0. Every 200 is
// stored.
func TestRollingRestartDrain(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("the sqlite3 CLI is needed to read the sink back independently (apt-get install sqlite3)")
	}
	const delay = 3 * time.Second
	db := filepath.Join(t.TempDir(), "hookpipe.db")
	hp := harness.StartHookpipe(t, "configs/quickstart.yaml", append(providerEnv,
		"HOOKPIPE_SQLITE_DSN=file:"+db+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)",
		"HOOKPIPE_ARCHIVE_DIR="+t.TempDir(),
		"HOOKPIPE_SHUTDOWN_DELAY="+delay.String(),
	)...)
	deliveries := distinctDeliveries(t, 20000)
	waitReady(t, hp.URL+"/readyz")

	type answer struct {
		id         string
		status     int // 0: no HTTP answer (connection refused or reset)
		end        time.Time
		afterFlip  bool // sent after the test saw readiness fail
		connClosed bool // the reply asked to close the connection
	}
	var (
		mu      sync.Mutex
		answers []answer
		next    atomic.Int64
		acked   atomic.Int64
		flipped atomic.Bool
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1)) - 1
				if i >= len(deliveries) {
					return
				}
				d := deliveries[i]
				afterFlip := flipped.Load()
				a := answer{id: d.EventID, afterFlip: afterFlip}
				req, _ := http.NewRequest(http.MethodPost, hp.URL+d.Path, bytes.NewReader(d.Body))
				req.Header.Set("Content-Type", "application/json")
				for k, v := range d.Header {
					req.Header.Set(k, v)
				}
				if res, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					a.status, a.connClosed = res.StatusCode, res.Close
				} else {
					time.Sleep(10 * time.Millisecond) // the listener is gone
				}
				a.end = time.Now()
				if a.status == 200 {
					acked.Add(1)
				}
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
			}
		})
	}
	for acked.Load() < 200 {
		time.Sleep(10 * time.Millisecond)
	}

	sigAt := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- hp.Terminate(t, 60*time.Second) }()
	// Readiness fails while the listener still serves.
	for {
		res, err := http.Get(hp.URL + "/readyz")
		if err != nil {
			t.Fatalf("the listener closed before readiness failed: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 503 {
			if !strings.Contains(string(body), "shutting down") {
				t.Errorf("/readyz after SIGTERM: %s", body)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	flipped.Store(true)
	flipAfter := time.Since(sigAt)

	err := <-exited
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, harness.TailFile(hp.LogPath, 3000))
	}
	if !strings.Contains(harness.TailFile(hp.LogPath, 1<<20), "Shutdown delay is in effect") {
		t.Error("the engine did not apply shutdown_delay")
	}

	stored := map[string]bool{}
	for _, r := range sqliteRows(t, db, "SELECT id FROM events") {
		stored[r] = true
	}
	statuses := map[int]int{}
	servedAfterFlip, closedAfterFlip, earlyFailures := 0, 0, 0
	for _, a := range answers {
		statuses[a.status]++
		switch a.status {
		case 200:
			if !stored[a.id] {
				t.Errorf("event %s was answered 200 but is not stored", a.id)
			}
			if a.afterFlip {
				servedAfterFlip++
				if a.connClosed {
					closedAfterFlip++
				}
			}
		case 503, 0:
		default:
			t.Errorf("a delivery answered %d during the restart; want only 200, 503 or a refused connection", a.status)
		}
		// Within the first two seconds of the three-second delay the stream
		// still runs: every delivery answered then must be a 200.
		if a.status != 200 && a.end.Before(sigAt.Add(delay-time.Second)) {
			earlyFailures++
		}
	}
	t.Logf("readiness failed %s after SIGTERM; %d deliveries answered 200 after that (%d asked to close the connection); replies %v",
		flipAfter.Round(time.Millisecond), servedAfterFlip, closedAfterFlip, statuses)
	if servedAfterFlip == 0 {
		t.Error("no delivery was served after readiness failed: the delay did not keep the listener serving")
	}
	if closedAfterFlip != servedAfterFlip {
		t.Errorf("%d of %d replies after readiness failed kept the connection alive", servedAfterFlip-closedAfterFlip, servedAfterFlip)
	}
	if earlyFailures > 0 {
		t.Errorf("%d deliveries failed during the shutdown delay", earlyFailures)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200 (%v)", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sqliteRows runs a query with the sqlite3 CLI and returns its first column.
func sqliteRows(t *testing.T, db, query string) []string {
	t.Helper()
	out, err := exec.Command("sqlite3", "-cmd", ".timeout 10000", "-batch", "-noheader", db, query).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", query, err, out)
	}
	return strings.Fields(string(out))
}
