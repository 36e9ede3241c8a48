//go:build integration

package mirror

import (
	"context"
	"encoding/csv"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/mirror/mirrortest"
	"github.com/hookpipe/hookpipe/tests/harness"
)

type fixture struct {
	pg  *harness.PostgresServer
	srv *mirrortest.Server
	l   *Loader
}

func newFixture(t *testing.T, conf Config) *fixture {
	t.Helper()
	pg := harness.Postgres(t)
	srv := mirrortest.NewServer()
	t.Cleanup(srv.Close)
	conf.DSN = pg.DSN
	if conf.Schema == "" {
		conf.Schema = "controlshift"
	}
	if conf.PrimaryKey == "" {
		conf.PrimaryKey = "id"
	}
	conf.MaxConns = 4
	conf.HTTP = HTTPConfig{ResponseHeaderTimeout: 10 * time.Second, ReadIdleTimeout: 10 * time.Second}
	l, err := NewLoader(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return &fixture{pg: pg, srv: srv, l: l}
}

func (f *fixture) load(t *testing.T, table string, kind Kind, url, loadID string) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return f.l.Load(ctx, Job{Table: table, Kind: kind, URL: url, LoadID: loadID})
}

func (f *fixture) mustLoad(t *testing.T, table string, kind Kind, url, loadID string) Result {
	t.Helper()
	res, err := f.load(t, table, kind, url, loadID)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// snapshot is the whole table as psql prints it, in key order, plus its
// columns, to compare a table before and after a delivery.
func (f *fixture) snapshot(t *testing.T, table string) string {
	t.Helper()
	cols := f.pg.Psql(t, "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'controlshift' AND table_name = '"+table+"'")
	rows := f.pg.Psql(t, "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) || ' ' || count(*) FROM controlshift."+table+" t")
	return cols + " | " + rows
}

func (f *fixture) leftovers(t *testing.T) {
	t.Helper()
	if n := f.pg.Psql(t, "SELECT count(*) FROM pg_class WHERE relname LIKE 'hookpipe\\_load\\_%' OR relname LIKE 'hookpipe\\_stage%'"); n != "0" {
		t.Errorf("%s staging tables left behind", n)
	}
}

func TestFullLoadFixtures(t *testing.T) {
	f := newFixture(t, Config{ColumnTypes: map[string]string{"goal": "integer", "petitions.created_at": "timestamptz"}})
	f.srv.Add("petitions_20260101.csv", mirrortest.Fixture("petitions_full.csv"))
	res := f.mustLoad(t, "Petitions", KindFull, f.srv.URL("petitions_20260101.csv"), "ev-1")
	if res.Rows != 3 || res.Table != "petitions" || res.Skipped || res.Bytes != int64(len(mirrortest.Fixture("petitions_full.csv"))) {
		t.Fatalf("result %+v", res)
	}

	checks := []struct{ query, want string }{
		// quoted commas
		{"SELECT title FROM controlshift.petitions WHERE id = '1'", "Save the park, the pond, and the trees"},
		// a CRLF inside a quoted value is kept as is
		{"SELECT title = E'Clean the river\\r\\nnow' FROM controlshift.petitions WHERE id = '2'", "t"},
		// UTF-8 and escaped quotes
		{"SELECT slug || '|' || title || '|' || notes FROM controlshift.petitions WHERE id = '3'", `café-crème|Crème brûlée für alle — 日本語 ✓ 🌳|she said "yes"`},
		// unquoted empty field: NULL; quoted "": the empty string
		{"SELECT notes IS NULL FROM controlshift.petitions WHERE id = '1'", "t"},
		{"SELECT notes IS NULL, notes = '' FROM controlshift.petitions WHERE id = '2'", "f|t"},
		// configured types; other columns text
		{"SELECT pg_typeof(goal)::text || ' ' || pg_typeof(created_at)::text || ' ' || pg_typeof(slug)::text FROM controlshift.petitions WHERE id = '1'", "integer timestamp with time zone text"},
		{"SELECT sum(goal) FROM controlshift.petitions", "1350"},
		// the primary key, under Postgres's usual name
		{"SELECT conname FROM pg_constraint WHERE conrelid = 'controlshift.petitions'::regclass AND contype = 'p'", "petitions_pkey"},
		// the load record, URL without its query string
		{"SELECT table_name || ' ' || load_id || ' ' || kind || ' ' || rows || ' ' || url FROM controlshift.hookpipe_mirror_loads", "petitions ev-1 full 3 " + f.srv.Server.URL + "/exports/petitions_20260101.csv"},
	}
	for _, c := range checks {
		if got := f.pg.Psql(t, c.query); got != c.want {
			t.Errorf("%s\n got %q\nwant %q", c.query, got, c.want)
		}
	}
	f.leftovers(t)

	// A header-only file replaces the table with an empty one of its columns.
	f.srv.Add("petitions_empty.csv", mirrortest.Fixture("header_only.csv"))
	res = f.mustLoad(t, "petitions", KindFull, f.srv.URL("petitions_empty.csv"), "ev-2")
	if res.Rows != 0 {
		t.Fatalf("rows %d", res.Rows)
	}
	if got := f.snapshot(t, "petitions"); got != "id text, slug text, title text | d41d8cd98f00b204e9800998ecf8427e 0" {
		t.Errorf("after the header-only file: %s", got)
	}
}

func TestIncrementalUpsertAndDrift(t *testing.T) {
	f := newFixture(t, Config{})
	f.srv.Add("full.csv", mirrortest.Fixture("petitions_full.csv"))
	f.srv.Add("incr.csv", mirrortest.Fixture("petitions_incremental.csv"))
	f.mustLoad(t, "petitions", KindFull, f.srv.URL("full.csv"), "full-1")
	res := f.mustLoad(t, "petitions", KindIncremental, f.srv.URL("incr.csv"), "incr-1")
	if res.Rows != 3 {
		t.Fatalf("rows %d, want 3 (rows in the file)", res.Rows)
	}
	got := f.pg.Psql(t, "SELECT id, title, goal, coalesce(notes, '<null>'), coalesce(category, '<null>') FROM controlshift.petitions ORDER BY id")
	want := strings.Join([]string{
		"1|Save the park, the pond, and the trees|100|<null>|<null>", // untouched, new column NULL
		"2|Clean the river today|300|updated|environment",            // updated
		"3|Crème brûlée für alle — 日本語 ✓ 🌳|1000|she said \"yes\"|<null>",
		"4|Second title, final|20||health", // the later of two rows with the same id
	}, "\n")
	if got != want {
		t.Errorf("after the incremental file:\n%s\nwant\n%s", got, want)
	}

	// An incremental file for a table that does not exist yet creates it
	// with the key.
	f.mustLoad(t, "signatures", KindIncremental, f.srv.URL("incr.csv"), "incr-2")
	if got := f.pg.Psql(t, "SELECT count(*) || ' ' || (SELECT conname FROM pg_constraint WHERE conrelid = 'controlshift.signatures'::regclass AND contype = 'p') FROM controlshift.signatures"); got != "2 signatures_pkey" {
		t.Errorf("new table from an incremental file: %s", got)
	}

	// Without the key column the file is refused and nothing changes.
	f.srv.Add("noid.csv", mirrortest.Fixture("no_id.csv"))
	before := f.snapshot(t, "petitions")
	if _, err := f.load(t, "petitions", KindIncremental, f.srv.URL("noid.csv"), "incr-3"); err == nil || !strings.Contains(err.Error(), `no "id" column`) {
		t.Fatalf("err %v", err)
	}
	if after := f.snapshot(t, "petitions"); after != before {
		t.Errorf("table changed by a refused file:\n%s\n%s", before, after)
	}
	f.leftovers(t)
}

func TestRepeatedDeliveries(t *testing.T) {
	f := newFixture(t, Config{})
	f.srv.Add("full.csv", mirrortest.Fixture("petitions_full.csv"))
	f.srv.Add("incr.csv", mirrortest.Fixture("petitions_incremental.csv"))
	f.mustLoad(t, "petitions", KindFull, f.srv.URL("full.csv"), "full-1")
	f.mustLoad(t, "petitions", KindIncremental, f.srv.URL("incr.csv"), "incr-1")
	state := f.snapshot(t, "petitions")
	requests := f.srv.Requests.Load()

	// The same deliveries again, four at a time: skipped, nothing fetched.
	var wg sync.WaitGroup
	for range 4 {
		for _, d := range []struct {
			kind     Kind
			name, id string
		}{{KindFull, "full.csv", "full-1"}, {KindIncremental, "incr.csv", "incr-1"}} {
			wg.Go(func() {
				res, err := f.load(t, "petitions", d.kind, f.srv.URL(d.name), d.id)
				if err != nil || !res.Skipped {
					t.Errorf("repeat of %s: %+v %v", d.id, res, err)
				}
			})
		}
	}
	wg.Wait()
	if got := f.snapshot(t, "petitions"); got != state {
		t.Errorf("repeats changed the table:\n%s\n%s", state, got)
	}
	if n := f.srv.Requests.Load(); n != requests {
		t.Errorf("repeats downloaded %d times", n-requests)
	}
	if n := f.pg.Psql(t, "SELECT count(*) FROM controlshift.hookpipe_mirror_loads"); n != "2" {
		t.Errorf("%s load records, want 2", n)
	}

	// Without a load id the URL without its query is the key: the same file
	// under a fresh signature is the same load.
	f.mustLoad(t, "petitions", KindFull, f.srv.URL("full.csv"), "")
	if res := f.mustLoad(t, "petitions", KindFull, f.srv.URL("full.csv")+"&X-Amz-Date=later", ""); !res.Skipped {
		t.Errorf("same URL path again was loaded again")
	}

	// The same full file under a new id reloads it: the same table as the
	// first full load gave.
	f2 := newFixture(t, Config{})
	f2.srv.Add("full.csv", mirrortest.Fixture("petitions_full.csv"))
	f2.mustLoad(t, "petitions", KindFull, f2.srv.URL("full.csv"), "a")
	first := f2.snapshot(t, "petitions")
	f2.mustLoad(t, "petitions", KindFull, f2.srv.URL("full.csv"), "b")
	if again := f2.snapshot(t, "petitions"); again != first {
		t.Errorf("reloading the same file gave another table:\n%s\n%s", first, again)
	}
}

func TestFailedDeliveriesLeaveTheMirror(t *testing.T) {
	f := newFixture(t, Config{ColumnTypes: map[string]string{"goal": "integer"}})
	full := mirrortest.Fixture("petitions_full.csv")
	f.srv.Add("full.csv", full)
	f.mustLoad(t, "petitions", KindFull, f.srv.URL("full.csv"), "good")
	before := f.snapshot(t, "petitions")

	f.srv.Add("malformed.csv", mirrortest.Fixture("malformed.csv"))
	f.srv.Add("bad_header.csv", mirrortest.Fixture("bad_header.csv"))
	f.srv.Add("end_marker.csv", mirrortest.Fixture("end_marker.csv"))
	f.srv.Add("empty.csv", nil)
	f.srv.Add("badgoal.csv", []byte("id,goal\n1,lots\n"))
	f.srv.AddTruncated("truncated.csv", full, len(full)-40)
	cases := []struct {
		name, table, url string
		kind             Kind
		want             string
	}{
		{"expired URL", "petitions", f.srv.ExpiredURL("full.csv"), KindFull, "status 403 Forbidden (AccessDenied)"},
		{"missing file", "petitions", f.srv.URL("gone.csv"), KindFull, "status 404 Not Found (NoSuchKey)"},
		{"truncated body", "petitions", f.srv.URL("truncated.csv"), KindFull, "download truncated"},
		{"truncated incremental", "petitions", f.srv.URL("truncated.csv"), KindIncremental, "download truncated"},
		{"malformed CSV", "petitions", f.srv.URL("malformed.csv"), KindFull, "unterminated CSV quoted field"},
		{"malformed incremental", "petitions", f.srv.URL("malformed.csv"), KindIncremental, "unterminated CSV quoted field"},
		{"SQL in a column name", "petitions", f.srv.URL("bad_header.csv"), KindFull, "column name"},
		{"end-of-data marker", "petitions", f.srv.URL("end_marker.csv"), KindFull, `line "\."`},
		{"empty file", "petitions", f.srv.URL("empty.csv"), KindFull, "no header row"},
		{"value the type refuses", "petitions", f.srv.URL("badgoal.csv"), KindIncremental, "invalid input syntax for type integer"},
		{"SQL in a table name", "petitions; DROP TABLE controlshift.petitions", f.srv.URL("full.csv"), KindFull, "table name"},
		{"server unreachable", "petitions", "http://127.0.0.1:1/exports/x.csv?X-Amz-Signature=" + mirrortest.Signature, KindFull, "connection refused"},
		{"not http", "petitions", "file:///etc/passwd", KindFull, "not http or https"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.load(t, c.table, c.kind, c.url, "bad-"+strconv.Itoa(i))
			if err == nil {
				t.Fatal("load succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not say %q", msg, c.want)
			}
			if strings.Contains(msg, mirrortest.Signature) || strings.Contains(msg, "X-Amz") {
				t.Errorf("error shows the query string: %s", msg)
			}
			if c.table == "petitions" && !strings.Contains(msg, `table "petitions"`) {
				t.Errorf("error does not name the table: %s", msg)
			}
			if after := f.snapshot(t, "petitions"); after != before {
				t.Errorf("mirror changed:\n%s\n%s", before, after)
			}
		})
	}
	if n := f.pg.Psql(t, "SELECT count(*) FROM controlshift.hookpipe_mirror_loads"); n != "1" {
		t.Errorf("%s load records, want only the good one", n)
	}
	f.leftovers(t)

	// A load over max_rows fails before the commit.
	g := newFixture(t, Config{MaxRows: 2})
	g.srv.Add("full.csv", full)
	if _, err := g.load(t, "petitions", KindFull, g.srv.URL("full.csv"), "x"); err == nil || !strings.Contains(err.Error(), "more than max_rows (2)") {
		t.Errorf("max_rows: %v", err)
	}
	if n := g.pg.Psql(t, "SELECT count(*) FROM pg_tables WHERE schemaname = 'controlshift' AND tablename = 'petitions'"); n != "0" {
		t.Errorf("table created by a refused load")
	}
}

// Readers keep seeing the old table, unblocked, while a full load streams
// the new one, and see the new one whole once it committed.
func TestFullLoadSwapIsAtomic(t *testing.T) {
	f := newFixture(t, Config{})
	f.srv.Add("v1.csv", mirrortest.Fixture("petitions_full.csv"))
	f.mustLoad(t, "petitions", KindFull, f.srv.URL("v1.csv"), "v1")

	var v2 strings.Builder
	if err := mirrortest.WriteRows(&v2, 20000); err != nil {
		t.Fatal(err)
	}
	reached, release := f.srv.AddPaused("v2.csv", []byte(v2.String()), v2.Len()/2)
	defer release()
	done := make(chan error, 1)
	go func() {
		_, err := f.load(t, "petitions", KindFull, f.srv.URL("v2.csv"), "v2")
		done <- err
	}()
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the download never started")
	}
	time.Sleep(200 * time.Millisecond) // let COPY take in the first half
	if n := f.pg.Psql(t, "SET statement_timeout = '5s'; SELECT count(*) FROM controlshift.petitions"); n != "3" {
		t.Errorf("a reader during the load saw %s rows, want the old 3", n)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := f.pg.Psql(t, "SELECT count(*) FROM controlshift.petitions"); n != "20000" {
		t.Errorf("after the load: %s rows", n)
	}
}

func TestMillionRowFile(t *testing.T) {
	f := newFixture(t, Config{ColumnTypes: map[string]string{"id": "bigint", "goal": "integer"}})
	path := filepath.Join(t.TempDir(), "signatures.csv")
	const rows = 1_000_000
	size, err := mirrortest.WriteRowsFile(path, rows)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.AddFile("signatures.csv", path)
	res := f.mustLoad(t, "signatures", KindFull, f.srv.URL("signatures.csv"), "big")
	t.Logf("%s loaded in %s", mirrortest.Describe(rows, size), res.Duration)
	if res.Rows != rows || res.Bytes != size {
		t.Fatalf("result %+v, want %d rows, %d bytes", res, rows, size)
	}
	got := f.pg.Psql(t, "SELECT count(*), sum(id), count(*) FILTER (WHERE notes IS NULL), count(*) FILTER (WHERE title LIKE '%, now') FROM controlshift.signatures")
	want := "1000000|500000500000|100000|142857"
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Row 777777 is a multiple of 7: its title is quoted, with a comma.
	rec, err := csv.NewReader(strings.NewReader(mirrortest.Row(777777))).Read()
	if err != nil {
		t.Fatal(err)
	}
	got = f.pg.Psql(t, "SELECT id, slug, title, email, goal, signature_count, created_at, country, locale, notes FROM controlshift.signatures WHERE id = 777777")
	if want := strings.Join(rec, "|"); got != want {
		t.Errorf("row 777777: %s\nfile: %s", got, want)
	}
}

// One batch: loads of different tables run side by side, loads of one
// table in batch order (the full export, then the incremental one on top).
func TestProcessBatchOrderPerTable(t *testing.T) {
	pg := harness.Postgres(t)
	srv := mirrortest.NewServer()
	defer srv.Close()
	srv.Add("full.csv", mirrortest.Fixture("petitions_full.csv"))
	srv.Add("incr.csv", mirrortest.Fixture("petitions_incremental.csv"))
	p := newTestProcessor(t, "dsn: "+pg.DSN)
	batch := service.MessageBatch{
		bulkMessage("data.full_table_exported", "e1", "petitions", srv.URL("full.csv")),
		bulkMessage("data.full_table_exported", "e2", "events", srv.URL("full.csv")),
		bulkMessage("data.incremental_table_exported", "e3", "petitions", srv.URL("incr.csv")),
		bulkMessage("data.full_table_exported", "e4", "local_chapters", srv.ExpiredURL("full.csv")),
	}
	out, err := p.ProcessBatch(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ status, rows string }{{"loaded", "3"}, {"loaded", "3"}, {"loaded", "3"}, {"failed", ""}}
	for i, msg := range out[0] {
		status, _ := msg.MetaGet(MetaStatus)
		rows, _ := msg.MetaGet(MetaRows)
		if status != want[i].status || rows != want[i].rows || (msg.GetError() != nil) != (status == "failed") {
			t.Errorf("message %d: status %q rows %q error %v", i, status, rows, msg.GetError())
		}
	}
	if got := pg.Psql(t, "SELECT count(*) || ' ' || count(category) FROM controlshift.petitions"); got != "4 2" {
		t.Errorf("petitions: %s, want the incremental file applied on the full one", got)
	}
	if got := pg.Psql(t, "SELECT count(*) FROM controlshift.events"); got != "3" {
		t.Errorf("events: %s", got)
	}
}
