//go:build integration

package acceptance

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/tests/harness"
)

const archiveKey = "acceptance-archive-key"

// runReplay runs configs/replay.yaml to completion.
func runReplay(t *testing.T, env ...string) time.Duration {
	t.Helper()
	cmd := exec.Command(harness.HookpipeBinary(t), "run", "configs/replay.yaml")
	cmd.Dir = harness.RepoRoot()
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	return time.Since(start)
}

// withoutReplayMarker removes the replay marker from a stored envelope.
func withoutReplayMarker(t *testing.T, envelope string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(envelope), &m); err != nil {
		t.Fatal(err)
	}
	if m["replayed"] != true {
		t.Fatalf("a replayed envelope lacks the marker: %.200s", envelope)
	}
	return strings.Replace(envelope, `,"replayed":true`, "", 1)
}

// The quickstart archives every request; after the sink is wiped, replaying
// the archive restores it byte for byte (the replay marker aside), a second
// replay changes nothing, and a record altered in the archive is refused
// into dead_letters with its reason.
func TestArchiveAndReplay(t *testing.T) {
	dir := t.TempDir()
	archiveDir := filepath.Join(dir, "archive")
	liveDB := filepath.Join(dir, "live.db")
	env := append(sinkEnv, "HOOKPIPE_ARCHIVE_DIR="+archiveDir, "HOOKPIPE_ARCHIVE_KEY="+archiveKey)
	hp := harness.StartHookpipe(t, "configs/quickstart.yaml", append(env, "HOOKPIPE_SQLITE_DSN=file:"+liveDB)...)

	// Every documented example, sent the way the providers send them.
	send := exec.Command(harness.HookpipeBinary(t), "send", "--all", "--url", hp.URL, "--concurrency", "4", "--repeat", "2",
		"--password", csPassword, "--city-secret", citySecret)
	start := time.Now()
	out, err := send.CombinedOutput()
	liveTook := time.Since(start)
	if err != nil || !strings.Contains(string(out), "sent 90: 90 × 200") {
		t.Fatalf("hookpipe send --all: %v\n%s", err, out)
	}
	if err := hp.Terminate(t, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	live := sqliteJSON(t, liveDB, "SELECT id, type, subject, time, received_at, event FROM events ORDER BY id")
	if len(live) != 45 {
		t.Fatalf("%d events live, want 45", len(live))
	}
	lines := 0
	files, _ := filepath.Glob(filepath.Join(archiveDir, "*", "*.ndjson"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines += bytes.Count(b, []byte("\n"))
	}
	if lines != 90 || len(files) != 2 {
		t.Fatalf("%d archive records in %d files, want 90 in 2 (one per provider and day)", lines, len(files))
	}

	replayDB := filepath.Join(dir, "replay.db")
	replayEnv := append(env, "HOOKPIPE_SQLITE_DSN=file:"+replayDB, "HOOKPIPE_REPLAY_PATHS="+archiveDir+"/**/*.ndjson")
	replayTook := runReplay(t, replayEnv...)
	replayed := sqliteJSON(t, replayDB, "SELECT id, type, subject, time, received_at, event FROM events ORDER BY id")
	if len(replayed) != len(live) {
		t.Fatalf("%d events after replay, want %d", len(replayed), len(live))
	}
	for i := range live {
		for _, col := range []string{"id", "type", "subject", "time", "received_at"} {
			if replayed[i][col] != live[i][col] {
				t.Errorf("%v: %s %v after replay, %v live", live[i]["id"], col, replayed[i][col], live[i][col])
			}
		}
		if got := withoutReplayMarker(t, replayed[i]["event"].(string)); got != live[i]["event"] {
			t.Errorf("envelope %v differs after replay:\n%s\n%s", live[i]["id"], got, live[i]["event"])
		}
	}
	t.Logf("archived %d requests (45 events), replayed %d records into %d events: live ingest %.0f events/s, replay %.0f records/s (replay includes process start)",
		lines, lines, len(replayed), 90/liveTook.Seconds(), float64(lines)/replayTook.Seconds())

	// Replaying again changes nothing.
	runReplay(t, replayEnv...)
	again := sqliteJSON(t, replayDB, "SELECT id, event FROM events ORDER BY id")
	if len(again) != len(replayed) || count(t, replayDB, "dead_letters") != 0 {
		t.Fatalf("a second replay changed the sink: %d events, %d dead letters", len(again), count(t, replayDB, "dead_letters"))
	}
	for i := range again {
		if again[i]["event"] != replayed[i]["event"] {
			t.Fatalf("a second replay rewrote %v", again[i]["id"])
		}
	}

	// A record altered after it was archived is refused with its reason.
	b, _ := os.ReadFile(files[0])
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	tampered := bytes.Replace(first, []byte(`\"id\"`), []byte(`\"id\" `), 1)
	if bytes.Equal(tampered, first) {
		tampered = bytes.Replace(first, []byte(`"body":"{`), []byte(`"body":"{ `), 1)
	}
	if err := os.WriteFile(files[0], append(append(tampered, '\n'), rest...), 0o644); err != nil {
		t.Fatal(err)
	}
	tamperedDB := filepath.Join(dir, "tampered.db")
	runReplay(t, append(env, "HOOKPIPE_SQLITE_DSN=file:"+tamperedDB, "HOOKPIPE_REPLAY_PATHS="+archiveDir+"/**/*.ndjson")...)
	dl := sqliteJSON(t, tamperedDB, "SELECT status, error FROM dead_letters")
	if len(dl) != 1 || dl[0]["status"] != "unauthenticated" || !strings.Contains(dl[0]["error"].(string), "seal does not verify") {
		t.Fatalf("dead letters after replaying a tampered archive: %v", dl)
	}
	if n := count(t, tamperedDB, "events"); n != 45 {
		// The tampered record's event is still in the archive once more (--repeat 2).
		t.Fatalf("%d events from the tampered archive, want 45", n)
	}
}

// When the archive cannot be written the delivery answers 503 and nothing
// reaches the sink.
func TestArchiveFailureAnswers503(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-directory")
	if err := os.WriteFile(blocker, []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "hookpipe.db")
	hp := harness.StartHookpipe(t, "configs/quickstart.yaml", append(sinkEnv,
		"HOOKPIPE_ARCHIVE_DIR="+blocker, "HOOKPIPE_SQLITE_DSN=file:"+db)...)
	e := examples.All()[0]
	path, hdr := providerAuth(e)
	if status, body := hp.Post(t, path, e.Body, hdr); status != 503 {
		t.Fatalf("status %d %s, want 503", status, body)
	}
	// The sink may not even have created its table yet: either way, no event.
	if tables := sqliteJSON(t, db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'"); len(tables) == 1 {
		if n := count(t, db, "events"); n != 0 {
			t.Fatalf("%d events written while the archive failed", n)
		}
	}
}
