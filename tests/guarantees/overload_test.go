//go:build integration

package guarantees

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// peakRSS reads a process's peak resident set size (VmHWM) in KiB.
func peakRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return kb
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// Thousands of slow senders (headers sent, body never finished) occupy every
// request slot: the excess is refused at once with 503 and Retry-After, the
// slow ones time out with 408, memory stays bounded, and service resumes.
func TestOverloadWithSlowSenders(t *testing.T) {
	const slots, slow = 256, 3000
	db := filepath.Join(t.TempDir(), "hookpipe.db")
	hp := harness.StartHookpipe(t, "configs/quickstart.yaml", append(providerEnv,
		"HOOKPIPE_SQLITE_DSN=file:"+db, "HOOKPIPE_MAX_IN_FLIGHT="+strconv.Itoa(slots))...)
	addr := strings.TrimPrefix(hp.URL, "http://")
	rssBefore := peakRSS(t, hp.Cmd.Process.Pid)

	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	refusedIn := make(chan time.Duration, slow)
	timedOutIn := make(chan time.Duration, slow)
	start := time.Now()
	for range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				mu.Lock()
				statuses[0]++
				mu.Unlock()
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /webhooks/controlshift HTTP/1.1\r\nHost: hookpipe\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"type\":")
			_ = c.SetReadDeadline(time.Now().Add(40 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			status := 0
			if err == nil {
				status = res.StatusCode
				if status == 503 {
					if res.Header.Get("Retry-After") == "" {
						t.Error("503 without Retry-After")
					}
					refusedIn <- time.Since(start)
				}
				if status == 408 {
					timedOutIn <- time.Since(start)
				}
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(refusedIn)
	close(timedOutIn)
	var slowest time.Duration
	for d := range refusedIn {
		slowest = max(slowest, d)
	}
	firstTimeout := time.Hour
	for d := range timedOutIn {
		firstTimeout = min(firstTimeout, d)
	}
	rssPeak := peakRSS(t, hp.Cmd.Process.Pid)
	t.Logf("%d slow senders against %d slots: replies %v; slowest 503 after %s; peak RSS %d MiB (%d MiB before)",
		slow, slots, statuses, slowest.Round(time.Millisecond), rssPeak/1024, rssBefore/1024)

	if statuses[503] < slow-slots-slots/4 {
		t.Errorf("only %d of %d excess requests were refused with 503", statuses[503], slow-slots)
	}
	if statuses[408]+statuses[503] != slow {
		t.Errorf("replies %v: every slow sender must get 408 (its body never came) or 503", statuses)
	}
	// Refusals do not wait behind the slow senders: every 503 came before the
	// first slow sender timed out.
	if slowest >= firstTimeout {
		t.Errorf("a 503 took %s, after the slow senders' first 408 at %s: refusals waited for slow bodies", slowest, firstTimeout)
	}
	// A generous bound: a few KiB per connection, not megabytes.
	if rssPeak > 512*1024 {
		t.Errorf("peak RSS %d MiB under overload", rssPeak/1024)
	}

	// Service resumes once the slow senders are gone.
	ex := distinctDeliveries(t, 1)[0]
	if status, body := hp.Post(t, ex.Path, ex.Body, ex.Header); status != 200 {
		t.Fatalf("after the overload: %d %s", status, body)
	}
}
