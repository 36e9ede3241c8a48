//go:build integration

package acceptance

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/plugins/mirror/mirrortest"
	"github.com/hookpipe/hookpipe/tests/harness"
)

// bulkEvent is a bulk-data webhook as ControlShift sends it: the URL
// HTML-escaped (`&amp;`).
func bulkEvent(t *testing.T, eventType, table, url, jid string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"type": eventType,
		"data": map[string]any{"url": html.EscapeString(url), "table": table},
		"jid":  jid,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMirror runs configs/controlshift_mirror.yaml against a real Postgres
// and a local server of presigned-style CSV URLs, and reads the mirror back
// with psql after full, incremental, repeated and failing deliveries.
func TestMirror(t *testing.T) {
	pg := harness.Postgres(t)
	srv := mirrortest.NewServer()
	defer srv.Close()
	hp := harness.StartHookpipe(t, "configs/controlshift_mirror.yaml",
		"CONTROLSHIFT_PASSWORD="+csPassword,
		"HOOKPIPE_POSTGRES_DSN="+pg.DSN,
		"HOOKPIPE_MIRROR_ALLOWED_HOSTS=127.0.0.1",
		"HOOKPIPE_WEBHOOK_TIMEOUT=90s",
	)
	auth := map[string]string{"Authorization": basicAuth("controlshift", csPassword)}
	deliver := func(body []byte, want int) {
		t.Helper()
		if status, reply := hp.Post(t, "/webhooks/controlshift", body, auth); status != want {
			t.Fatalf("status %d %s, want %d\n%s", status, reply, want, harness.TailFile(hp.LogPath, 3000))
		}
	}
	snapshot := func() string {
		t.Helper()
		return pg.Psql(t, "SELECT string_agg(t::text, E'\\n' ORDER BY t.id) FROM controlshift.petitions t")
	}

	full := mirrortest.Fixture("petitions_full.csv")
	srv.Add("petitions_full.csv", full)
	srv.Add("petitions_incremental.csv", mirrortest.Fixture("petitions_incremental.csv"))

	// Full export: the table appears, answered only once committed.
	deliver(bulkEvent(t, "data.full_table_exported", "petitions", srv.URL("petitions_full.csv"), "jid-full-1"), 200)
	checks := map[string]string{
		"SELECT title FROM controlshift.petitions WHERE id = '1'":                               "Save the park, the pond, and the trees",
		"SELECT title = E'Clean the river\\r\\nnow' FROM controlshift.petitions WHERE id = '2'": "t",
		"SELECT title FROM controlshift.petitions WHERE id = '3'":                               "Crème brûlée für alle — 日本語 ✓ 🌳",
		"SELECT (notes IS NULL)::text FROM controlshift.petitions WHERE id = '1'":               "true",
		"SELECT (notes = '')::text FROM controlshift.petitions WHERE id = '2'":                  "true",
	}
	for q, want := range checks {
		if got := pg.Psql(t, q); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}

	// Incremental export: upserted, the new column added.
	deliver(bulkEvent(t, "data.incremental_table_exported", "petitions", srv.URL("petitions_incremental.csv"), "jid-incr-1"), 200)
	if got := pg.Psql(t, "SELECT id, title, coalesce(category, '<null>') FROM controlshift.petitions ORDER BY id"); got != strings.Join([]string{
		"1|Save the park, the pond, and the trees|<null>",
		"2|Clean the river today|environment",
		"3|Crème brûlée für alle — 日本語 ✓ 🌳|<null>",
		"4|Second title, final|health",
	}, "\n") {
		t.Errorf("after the incremental export:\n%s", got)
	}
	state := snapshot()

	// Repeated deliveries (ControlShift's retries) are answered 200 and change
	// nothing: the old full export is not reloaded over the newer rows.
	requests := srv.Requests.Load()
	deliver(bulkEvent(t, "data.full_table_exported", "petitions", srv.URL("petitions_full.csv"), "jid-full-1"), 200)
	deliver(bulkEvent(t, "data.incremental_table_exported", "petitions", srv.URL("petitions_incremental.csv"), "jid-incr-1"), 200)
	if got := snapshot(); got != state {
		t.Errorf("repeated deliveries changed the mirror:\n%s\nwas\n%s", got, state)
	}
	if n := srv.Requests.Load() - requests; n != 0 {
		t.Errorf("repeated deliveries downloaded %d files", n)
	}

	// Failing deliveries answer 503 and leave the mirror as it was.
	srv.AddTruncated("petitions_cut.csv", full, len(full)/2)
	srv.Add("petitions_bad.csv", mirrortest.Fixture("malformed.csv"))
	failing := map[string]struct{ url, why string }{
		"jid-expired":   {srv.ExpiredURL("petitions_full.csv"), "status 403 Forbidden"},
		"jid-missing":   {srv.URL("petitions_later.csv"), "status 404 Not Found"},
		"jid-truncated": {srv.URL("petitions_cut.csv"), "download truncated"},
		"jid-malformed": {srv.URL("petitions_bad.csv"), "unterminated CSV quoted field"},
	}
	for jid, f := range failing {
		deliver(bulkEvent(t, "data.full_table_exported", "petitions", f.url, jid), 503)
		if got := snapshot(); got != state {
			t.Fatalf("%s changed the mirror:\n%s", jid, got)
		}
		// A log line names the table, the reason and the URL without its query.
		path := f.url[:strings.IndexByte(f.url, '?')]
		found := false
		for line := range strings.SplitSeq(harness.TailFile(hp.LogPath, 1<<20), "\n") {
			if strings.Contains(line, path) && strings.Contains(line, "table=petitions") && strings.Contains(line, f.why) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no log line names petitions, %s and %q\n%s", jid, path, f.why, harness.TailFile(hp.LogPath, 3000))
		}
	}
	logs := harness.TailFile(hp.LogPath, 1<<20)
	if strings.Contains(logs, mirrortest.Signature) || strings.Contains(logs, "X-Amz-Credential") {
		t.Errorf("the log shows a presigned query string")
	}
	if tables := pg.Psql(t, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'controlshift'"); tables != "hookpipe_mirror_loads,petitions" {
		t.Errorf("tables in the mirror schema: %s", tables)
	}

	// ControlShift retries the 404 once the file exists: it loads then.
	srv.Add("petitions_later.csv", mirrortest.Fixture("header_only.csv"))
	deliver(bulkEvent(t, "data.full_table_exported", "petitions", srv.URL("petitions_later.csv"), "jid-missing"), 200)
	if n := pg.Psql(t, "SELECT count(*) FROM controlshift.petitions"); n != "0" {
		t.Errorf("after the retried full export: %s rows, want 0", n)
	}

	// Other events are not loads: they go to the events table.
	for _, e := range examples.All() {
		if e.Provider == examples.ControlShift && e.Name == "petition.launched" {
			deliver(e.Body, 200)
		}
	}
	if got := pg.Psql(t, "SELECT type FROM events"); got != "org.controlshift.petition.launched" {
		t.Errorf("events table: %q", got)
	}

	// A 1,000,000-row export through the webhook.
	path := filepath.Join(t.TempDir(), "signatures.csv")
	size, err := mirrortest.WriteRowsFile(path, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	srv.AddFile("signatures.csv", path)
	deliver(bulkEvent(t, "data.full_table_exported", "signatures", srv.URL("signatures.csv"), "jid-big"), 200)
	if got := pg.Psql(t, "SELECT count(*), sum(id::bigint) FROM controlshift.signatures"); got != "1000000|500000500000" {
		t.Errorf("signatures: %s", got)
	}
	if got := pg.Psql(t, "SELECT rows || ' ' || bytes FROM controlshift.hookpipe_mirror_loads WHERE table_name = 'signatures'"); got != "1000000 "+itoa(size) {
		t.Errorf("load record: %s", got)
	}

	// Metrics per table.
	res, err := http.Get(hp.EngineURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, re := range []string{
		`mirror_rows_loaded_total\{[^}]*kind="full"[^}]*table="signatures"[^}]*\} 1e\+06`,
		`mirror_bytes_total\{[^}]*table="signatures"[^}]*\} `,
		`mirror_load_duration_ns_count\{[^}]*table="signatures"[^}]*\} 1`,
		`mirror_loads_total\{[^}]*status="failed"[^}]*table="petitions"[^}]*\} 4`,
		`mirror_loads_total\{kind="full"[^}]*status="skipped"[^}]*table="petitions"[^}]*\} 1`,
		`mirror_loads_total\{kind="incremental"[^}]*status="skipped"[^}]*table="petitions"[^}]*\} 1`,
	} {
		if !regexp.MustCompile(re).Match(metrics) {
			t.Errorf("/metrics has no line matching %s\n%s", re, regexp.MustCompile(`(?m)^mirror_.*$`).FindAll(metrics, -1))
		}
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
