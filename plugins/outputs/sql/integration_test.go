//go:build integration

package sql

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/health"
	"github.com/hookpipe/hookpipe/tests/harness"
)

// startStream runs an engine stream from an in-process producer to the given
// output config. The producer blocks until the output acknowledged the batch
// (nil) or rejected it (the error).
func startStream(t *testing.T, output string) service.MessageBatchHandlerFunc {
	t.Helper()
	b := service.NewStreamBuilder()
	produce, err := b.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(output); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLoggerYAML("level: error"); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = stream.Run(context.Background())
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stream.Stop(ctx)
		<-done
	})
	return produce
}

// send delivers a batch and waits at most timeout for its acknowledgement.
func send(produce service.MessageBatchHandlerFunc, timeout time.Duration, batch service.MessageBatch) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return produce(ctx, batch)
}

// cloudEvents builds canonical envelopes evt-<from> .. evt-<to-1>; every
// third one has no subject, as the attribute is optional.
func cloudEvents(from, to int) service.MessageBatch {
	var b service.MessageBatch
	for i := from; i < to; i++ {
		subject := fmt.Sprintf(`"subject":"petition/%d",`, i%4)
		if i%3 == 0 {
			subject = ""
		}
		doc := fmt.Sprintf(`{"specversion":"1.0","id":"evt-%05d","source":"controlshift","type":"petition.created",%s"time":"2024-05-01T12:%02d:00Z","datacontenttype":"application/json","data":{"n":%d,"title":"it's \"quoted\""}}`,
			i, subject, i%60, i)
		b = append(b, service.NewMessage([]byte(doc)))
	}
	return b
}

const pgEventsTable = `CREATE TABLE IF NOT EXISTS events (
        id      TEXT PRIMARY KEY,
        type    TEXT NOT NULL,
        source  TEXT NOT NULL,
        subject TEXT,
        time    TIMESTAMPTZ,
        payload JSONB NOT NULL
      )`

func TestIntegrationPostgresInsert(t *testing.T) {
	pg := harness.Postgres(t)
	produce := startStream(t, fmt.Sprintf(`
sql_insert:
  driver: postgres
  dsn: '%s'
  table: events
  columns: [ id, type, source, subject, time, payload ]
  args_mapping: root = [ this.id, this.type, this.source, this.subject, this.time, content().string() ]
  suffix: ON CONFLICT (id) DO NOTHING
  init_statement: |
    %s
`, pg.DSN, pgEventsTable))

	if err := send(produce, 30*time.Second, cloudEvents(0, 4)); err != nil {
		t.Fatal(err)
	}
	got := pg.Psql(t, `SELECT id, type, source, coalesce(subject, '-'), to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), payload->'data'->>'n', payload->'data'->>'title' FROM events ORDER BY id`)
	want := strings.Join([]string{
		`evt-00000|petition.created|controlshift|-|2024-05-01T12:00:00|0|it's "quoted"`,
		`evt-00001|petition.created|controlshift|petition/1|2024-05-01T12:01:00|1|it's "quoted"`,
		`evt-00002|petition.created|controlshift|petition/2|2024-05-01T12:02:00|2|it's "quoted"`,
		`evt-00003|petition.created|controlshift|-|2024-05-01T12:03:00|3|it's "quoted"`,
	}, "\n")
	if got != want {
		t.Fatalf("rows read back with psql:\n%s\nwant:\n%s", got, want)
	}

	// A provider retry redelivers 0..3 alongside a new event: one row each.
	if err := send(produce, 30*time.Second, cloudEvents(0, 5)); err != nil {
		t.Fatal(err)
	}
	if got := pg.Psql(t, "SELECT count(*), count(DISTINCT id) FROM events"); got != "5|5" {
		t.Errorf("after redelivery count|distinct = %s, want 5|5", got)
	}

	// A message that cannot be mapped is rejected; its neighbours are written.
	batch := append(cloudEvents(5, 6), service.NewMessage([]byte("not json")))
	batch = append(batch, cloudEvents(6, 7)...)
	if err := send(produce, 30*time.Second, batch); err == nil {
		t.Error("a batch with an unmappable message was fully acknowledged")
	}
	if got := pg.Psql(t, "SELECT string_agg(id, ',' ORDER BY id) FROM events WHERE id >= 'evt-00005'"); got != "evt-00005,evt-00006" {
		t.Errorf("rows around the bad message = %s", got)
	}

	// 10923 rows of 6 columns need 65538 parameters: three more than one
	// Postgres statement carries, so the batch is split, in one transaction.
	if err := send(produce, 60*time.Second, cloudEvents(100, 100+10923)); err != nil {
		t.Fatal(err)
	}
	if got := pg.Psql(t, "SELECT count(*), min(id), max(id) FROM events WHERE id >= 'evt-00100'"); got != "10923|evt-00100|evt-11022" {
		t.Errorf("large batch count|min|max = %s", got)
	}
}

func TestIntegrationPostgresRaw(t *testing.T) {
	pg := harness.Postgres(t)
	pg.Psql(t, `CREATE TABLE events (id TEXT PRIMARY KEY, type TEXT NOT NULL, payload JSONB NOT NULL);
CREATE TABLE latest (subject TEXT PRIMARY KEY, id TEXT NOT NULL, time TIMESTAMPTZ NOT NULL);
CREATE TABLE events_cs (id TEXT PRIMARY KEY);
CREATE TABLE victims (note TEXT);
INSERT INTO victims VALUES ('still here');`)

	produce := startStream(t, fmt.Sprintf(`
sql_raw:
  driver: postgres
  dsn: '%s'
  queries:
    - query: INSERT INTO events (id, type, payload) VALUES ($1, $2, $3)
      args_mapping: root = [ this.id, this.type, content().string() ]
    - query: |
        INSERT INTO latest (subject, id, time) VALUES ($1, $2, $3)
        ON CONFLICT (subject) DO UPDATE SET id = EXCLUDED.id, time = EXCLUDED.time
        WHERE latest.time <= EXCLUDED.time
      args_mapping: root = [ this.subject.or("none"), this.id, this.time ]
`, pg.DSN))

	if err := send(produce, 30*time.Second, cloudEvents(1, 9)); err != nil {
		t.Fatal(err)
	}
	if got := pg.Psql(t, "SELECT count(*) FROM events"); got != "8" {
		t.Errorf("events = %s, want 8", got)
	}
	got := pg.Psql(t, "SELECT subject, id FROM latest ORDER BY subject")
	want := "none|evt-00006\npetition/0|evt-00008\npetition/1|evt-00005\npetition/2|evt-00002\npetition/3|evt-00007"
	if got != want {
		t.Errorf("latest:\n%s\nwant:\n%s", got, want)
	}

	// evt-00020 and evt-00021 run before the duplicate evt-00001 fails in the
	// same pipeline; the implicit transaction takes all of them back.
	batch := append(cloudEvents(20, 22), cloudEvents(1, 2)...)
	err := send(produce, 30*time.Second, batch)
	if err == nil || !strings.Contains(err.Error(), "message 2") {
		t.Errorf("batch with a duplicate key: %v", err)
	}
	if got := pg.Psql(t, "SELECT count(*) FROM events"); got != "8" {
		t.Errorf("events after the failed batch = %s, want 8", got)
	}
	if err := send(produce, 30*time.Second, cloudEvents(20, 22)); err != nil {
		t.Fatal(err)
	}
	if got := pg.Psql(t, "SELECT count(*) FROM events"); got != "10" {
		t.Errorf("events after retry = %s, want 10", got)
	}

	// A large batch is still one pipeline; pgx must keep reading results
	// while it sends, or client and server would block on each other.
	if err := send(produce, 60*time.Second, cloudEvents(1000, 6000)); err != nil {
		t.Fatal(err)
	}
	if got := pg.Psql(t, "SELECT count(*) FROM events"); got != "5010" {
		t.Errorf("events after the large batch = %s, want 5010", got)
	}

	dyn := startStream(t, fmt.Sprintf(`
sql_raw:
  driver: pgx
  dsn: '%s'
  unsafe_dynamic_query: true
  query: INSERT INTO events_${! meta("provider") } (id) VALUES ($1)
  args_mapping: root = [ this.id ]
`, pg.DSN))
	ok := service.NewMessage([]byte(`{"id":"a"}`))
	ok.MetaSetMut("provider", "cs")
	evil := service.NewMessage([]byte(`{"id":"b"}`))
	evil.MetaSetMut("provider", "cs (id) VALUES ('x'); DROP TABLE victims; --")
	if err := send(dyn, 30*time.Second, service.MessageBatch{ok, evil}); err == nil {
		t.Error("an injection attempt was acknowledged")
	}
	if got := pg.Psql(t, "SELECT (SELECT string_agg(id, ',') FROM events_cs), (SELECT note FROM victims)"); got != "a|still here" {
		t.Errorf("events_cs|victims = %s", got)
	}
}

// While the database is down, a batch is neither acknowledged nor failed: it
// is held, and written once the database is back, without a retry from
// upstream. A statement error is still a plain failure at once.
func TestIntegrationPostgresOutage(t *testing.T) {
	pg := harness.StartThrowawayPostgres(t)
	// No key and no conflict clause: every acknowledged write is one row,
	// so the counts below show exactly-once, not deduplication.
	insert := startStream(t, fmt.Sprintf(`
sql_insert:
  driver: postgres
  dsn: '%s'
  table: deliveries
  columns: [ id, via ]
  args_mapping: root = [ this.id, "insert" ]
  init_statement: CREATE TABLE IF NOT EXISTS deliveries (id TEXT NOT NULL, via TEXT NOT NULL)
`, pg.DSN))
	raw := startStream(t, fmt.Sprintf(`
sql_raw:
  driver: postgres
  dsn: '%s'
  query: INSERT INTO deliveries (id, via) VALUES ($1, 'raw')
  args_mapping: root = [ this.id ]
  init_statement: CREATE TABLE IF NOT EXISTS deliveries (id TEXT NOT NULL, via TEXT NOT NULL)
`, pg.DSN))

	if err := send(insert, 30*time.Second, cloudEvents(0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := send(raw, 30*time.Second, cloudEvents(0, 3)); err != nil {
		t.Fatal(err)
	}
	// A constraint violation (NULL id) fails at once: it is not an outage.
	if err := send(insert, 30*time.Second, service.MessageBatch{service.NewMessage([]byte(`{"id":null}`))}); err == nil || !strings.Contains(err.Error(), "23502") {
		t.Fatalf("a NULL id: %v, want a not-null violation", err)
	}

	pg.Stop(t)
	insertHeld := make(chan error, 1)
	rawHeld := make(chan error, 1)
	go func() { insertHeld <- send(insert, 90*time.Second, cloudEvents(3, 6)) }()
	go func() { rawHeld <- send(raw, 90*time.Second, cloudEvents(3, 6)) }()

	// An output that starts while the database is down keeps retrying its
	// connection and init statement, and writes once the database is back.
	late := startStream(t, fmt.Sprintf(`
sql_insert:
  driver: postgres
  dsn: '%s'
  table: late
  columns: [ id ]
  args_mapping: root = [ this.id ]
  init_statement: CREATE TABLE IF NOT EXISTS late (id TEXT PRIMARY KEY)
`, pg.DSN))
	lateErr := make(chan error, 1)
	go func() { lateErr <- send(late, 90*time.Second, cloudEvents(0, 2)) }()

	// Neither held batch is answered while the database is down.
	select {
	case err := <-insertHeld:
		t.Fatalf("sql_insert answered a batch while the database was down: %v", err)
	case err := <-rawHeld:
		t.Fatalf("sql_raw answered a batch while the database was down: %v", err)
	case <-time.After(3 * time.Second):
	}

	pg.Start(t)
	if err := <-insertHeld; err != nil {
		t.Fatalf("sql_insert's held batch after the database came back: %v", err)
	}
	if err := <-rawHeld; err != nil {
		t.Fatalf("sql_raw's held batch after the database came back: %v", err)
	}
	if err := <-lateErr; err != nil {
		t.Fatalf("output started during the outage: %v", err)
	}

	got := pg.Psql(t, "SELECT via, count(*), count(DISTINCT id) FROM deliveries GROUP BY via ORDER BY via")
	if got != "insert|6|6\nraw|6|6" {
		t.Errorf("deliveries via|count|distinct:\n%s\nwant insert|6|6 and raw|6|6", got)
	}
	if got := pg.Psql(t, "SELECT count(*) FROM late"); got != "2" {
		t.Errorf("late rows = %s, want 2", got)
	}
}

// The output's own contract with the engine, against a real server: with the
// database down a write reports service.ErrNotConnected, Connect fails and
// the readiness probe fails; once it is back, Connect runs the init statement
// again (the table was dropped meanwhile) and the probe and writes pass.
func TestIntegrationPostgresNotConnected(t *testing.T) {
	pg := harness.StartThrowawayPostgres(t)
	conf, err := sqlInsertSpec().ParseYAML(fmt.Sprintf(`
driver: postgres
dsn: '%s'
table: probed
columns: [ id ]
args_mapping: root = [ this.id ]
init_statement: CREATE TABLE IF NOT EXISTS probed (id TEXT PRIMARY KEY)
`, pg.DSN), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := service.MockResources()
	o, err := newSQLInsertOutput(conf, res)
	if err != nil {
		t.Fatal(err)
	}
	probes := health.For(res).Probes()
	if len(probes) != 1 || !strings.HasPrefix(probes[0].Name, "sql_insert") {
		t.Fatalf("probes %v, want the output's", probes)
	}
	probe := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return probes[0].Check(ctx)
	}
	ctx := context.Background()
	if err := probe(); err == nil {
		t.Error("the probe passed before the output connected")
	}
	if err := o.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := probe(); err != nil {
		t.Fatalf("probe while connected: %v", err)
	}
	batch := func(id string) service.MessageBatch {
		return service.MessageBatch{service.NewMessage([]byte(`{"id":"` + id + `"}`))}
	}
	if err := o.WriteBatch(ctx, batch("a")); err != nil {
		t.Fatal(err)
	}
	// A duplicate key is the statement's fault, not the connection's.
	if err := o.WriteBatch(ctx, batch("a")); err == nil || errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("duplicate key: %v, want a plain error", err)
	}
	pg.Psql(t, "DROP TABLE probed")

	pg.Stop(t)
	if err := o.WriteBatch(ctx, batch("b")); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("write with the database down: %v, want service.ErrNotConnected", err)
	}
	if err := o.Connect(ctx); err == nil {
		t.Fatal("Connect succeeded with the database down")
	}
	if err := probe(); err == nil {
		t.Fatal("the probe passed with the database down")
	}

	pg.Start(t)
	if err := o.Connect(ctx); err != nil {
		t.Fatalf("Connect after the database came back: %v", err)
	}
	if err := probe(); err != nil {
		t.Fatalf("probe after the database came back: %v", err)
	}
	if err := o.WriteBatch(ctx, batch("b")); err != nil {
		t.Fatalf("write after reconnecting (the init statement should have recreated the table): %v", err)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(health.For(res).Probes()); n != 0 {
		t.Errorf("%d probes left after Close", n)
	}
}

// sqlite3 runs the sqlite3 CLI, an independent reader of the file.
func sqlite3(t *testing.T, path, query string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", "-cmd", ".timeout 10000", "-batch", "-noheader", path, query).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", query, err, out)
	}
	return strings.TrimRight(string(out), "\n")
}

func TestIntegrationSQLiteFile(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatalf("the sqlite3 CLI is needed to read the file independently (apt-get install sqlite3): %v", err)
	}
	path := filepath.Join(t.TempDir(), "data", "quickstart", "events.db")
	produce := startStream(t, `
sql_insert:
  driver: sqlite
  dsn: file:`+path+`
  table: events
  columns: [ id, type, source, subject, time, payload ]
  args_mapping: root = [ this.id, this.type, this.source, this.subject, this.time, content().string() ]
  suffix: ON CONFLICT (id) DO NOTHING
  init_statement: |
    CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT NOT NULL, source TEXT NOT NULL, subject TEXT, time TEXT, payload TEXT NOT NULL)
`)
	if err := send(produce, 30*time.Second, cloudEvents(0, 4)); err != nil {
		t.Fatal(err)
	}
	got := sqlite3(t, path, "SELECT id, coalesce(subject, '-'), time, json_extract(payload, '$.data.n') FROM events ORDER BY id")
	want := "evt-00000|-|2024-05-01T12:00:00Z|0\nevt-00001|petition/1|2024-05-01T12:01:00Z|1\nevt-00002|petition/2|2024-05-01T12:02:00Z|2\nevt-00003|-|2024-05-01T12:03:00Z|3"
	if got != want {
		t.Fatalf("rows read back with sqlite3:\n%s\nwant:\n%s", got, want)
	}
	if got := sqlite3(t, path, "PRAGMA journal_mode"); got != "wal" {
		t.Errorf("journal_mode = %s, want wal", got)
	}

	// A reader holds a read transaction open in the sqlite3 CLI while we
	// write: in WAL mode neither waits for the other.
	cli := exec.Command("sqlite3", "-batch", "-noheader", path)
	stdin, _ := cli.StdinPipe()
	stdout, _ := cli.StdoutPipe()
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cli.Wait() }()
	lines := bufio.NewReader(stdout)
	ask := func(sql string) string {
		t.Helper()
		if _, err := io.WriteString(stdin, sql+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("sqlite3 reader: %v", err)
		}
		return strings.TrimSpace(line)
	}
	if _, err := io.WriteString(stdin, "BEGIN;\n"); err != nil {
		t.Fatal(err)
	}
	if got := ask("SELECT count(*) FROM events;"); got != "4" {
		t.Fatalf("reader sees %s rows, want 4", got)
	}

	// Redelivery of 0..3 plus 4 and 5, while the reader's snapshot is open.
	if err := send(produce, 30*time.Second, cloudEvents(0, 6)); err != nil {
		t.Fatalf("write while a reader is open: %v", err)
	}
	if got := ask("SELECT count(*) FROM events;"); got != "4" {
		t.Errorf("reader's snapshot changed under it: %s rows", got)
	}
	if _, err := io.WriteString(stdin, "COMMIT;\n"); err != nil {
		t.Fatal(err)
	}
	if got := ask("SELECT count(*), count(DISTINCT id) FROM events;"); got != "6|6" {
		t.Errorf("after the reader's commit count|distinct = %s, want 6|6", got)
	}
}
