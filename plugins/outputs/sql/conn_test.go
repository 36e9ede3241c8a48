package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/health"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func TestInitFilesRunInOrderBeforeInitStatement(t *testing.T) {
	dir := t.TempDir()
	// 10_ sorts after 02_; each file depends on the one before it, and the
	// init statement on both.
	files := map[string]string{
		"02_events.sql": "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY);\nCREATE TABLE IF NOT EXISTS seen (id TEXT);",
		"10_seed.sql":   "INSERT INTO events (id) VALUES ('seed') ON CONFLICT DO NOTHING;",
		"notes.txt":     "not SQL",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dsn := sqliteFile(t)
	o := newSQLiteInsertWith(t, `
driver: sqlite
dsn: `+dsn+`
table: seen
columns: [ id ]
args_mapping: root = [ this.id ]
init_files: [ "`+filepath.Join(dir, "*.sql")+`" ]
init_statement: INSERT INTO seen SELECT id FROM events
`)
	// Connecting twice in a row (as after a restart) must not fail: the
	// files are idempotent, and the pool is only opened once per output.
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := queryStrings(t, dsn, "SELECT id FROM seen"); strings.Join(got, ",") != "seed" {
		t.Errorf("seen = %v, want [seed]", got)
	}
}

func newSQLiteInsertWith(t testing.TB, yaml string) *sqlInsertOutput {
	t.Helper()
	o, err := parseInsert(yaml)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	return o
}

func TestInitFailureFailsConnect(t *testing.T) {
	o, err := parseInsert(`
driver: sqlite
dsn: ` + sqliteFile(t) + `
table: events
columns: [ id ]
args_mapping: root = [ this.id ]
init_statement: CREATE TABLE events (id TEXT PRIMARY KEY) WITH NONSENSE
`)
	if err != nil {
		t.Fatal(err)
	}
	err = o.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "init_statement") {
		t.Fatalf("connect with a broken init_statement = %v", err)
	}
	if err := o.WriteBatch(context.Background(), events(0, 1)); !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("write after failed connect = %v, want ErrNotConnected", err)
	}
}

func TestInitFilesMissingIsConfigError(t *testing.T) {
	_, err := parseInsert(`
driver: sqlite
dsn: file:/tmp/x.db
table: events
columns: [ id ]
args_mapping: root = [ this.id ]
init_files: [ "` + filepath.Join(t.TempDir(), "missing.sql") + `" ]
`)
	if err == nil {
		t.Error("a missing init file was accepted")
	}
}

func TestSQLiteConnectCreatesDirectoryAndSetsPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "events.db")
	o := newSQLiteInsertWith(t, `
driver: sqlite
dsn: file:`+path+`
table: events
columns: [ id ]
args_mapping: root = [ this.id ]
`)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	db, err := o.conn.get()
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	var timeout int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA busy_timeout").Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || timeout != 5000 {
		t.Errorf("journal_mode=%s busy_timeout=%d, want wal and 5000", mode, timeout)
	}
	if got := db.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("sqlite pool allows %d connections, want 1", got)
	}
}

func TestPoolSettings(t *testing.T) {
	o := newSQLiteInsertWith(t, `
driver: sqlite
dsn: `+sqliteFile(t)+`
table: events
columns: [ id ]
args_mapping: root = [ this.id ]
conn_max_open: 4
conn_max_idle: 3
conn_max_idle_time: 1m
conn_max_life_time: 1h
`)
	c := o.conn
	if c.maxOpen != 4 || c.maxIdle != 3 || c.maxIdleTime != time.Minute || c.maxLifeTime != time.Hour {
		t.Errorf("pool settings = open %d idle %d idle_time %s life %s", c.maxOpen, c.maxIdle, c.maxIdleTime, c.maxLifeTime)
	}
	db, _ := c.get()
	if got := db.Stats().MaxOpenConnections; got != 4 {
		t.Errorf("pool allows %d connections, want 4", got)
	}

	pg, err := parseInsert(`
driver: postgres
dsn: postgres://u@localhost/db
table: events
columns: [ id ]
args_mapping: root = [ this.id ]
`)
	if err != nil {
		t.Fatal(err)
	}
	if pg.conn.maxOpen != 0 || pg.conn.maxIdle != 2 {
		t.Errorf("postgres defaults = open %d idle %d, want 0 (unlimited) and 2", pg.conn.maxOpen, pg.conn.maxIdle)
	}
}

// exampleOutput cuts the component's own config out of a spec example.
func exampleOutput(t *testing.T, example, name string) string {
	t.Helper()
	_, body, ok := strings.Cut(example, "\n  "+name+":\n")
	if !ok {
		t.Fatalf("example has no %s section:\n%s", name, example)
	}
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	return strings.Join(lines, "\n")
}

func TestSpecExamplesAreValid(t *testing.T) {
	env := service.GlobalEnvironment()
	linter := env.FullConfigSchema("", "").NewStreamConfigLinter()
	specs := map[string]*service.ConfigSpec{"sql_insert": sqlInsertSpec(), "sql_raw": sqlRawSpec()}
	seen := 0
	env.WalkOutputs(func(name string, view *service.ConfigView) {
		spec, ok := specs[name]
		if !ok {
			return
		}
		data, err := view.TemplateData()
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range data.Examples {
			seen++
			lints, err := linter.LintYAML([]byte(ex.Config))
			if err != nil || len(lints) > 0 {
				t.Errorf("%s example %q: %v %v", name, ex.Title, err, lints)
			}
			conf, err := spec.ParseYAML(exampleOutput(t, ex.Config, name), env)
			if err != nil {
				t.Errorf("%s example %q: %v", name, ex.Title, err)
				continue
			}
			if name == "sql_insert" {
				_, err = newSQLInsertOutput(conf, service.MockResources())
			} else {
				_, err = newSQLRawOutput(conf, service.MockResources())
			}
			if err != nil {
				t.Errorf("%s example %q: %v", name, ex.Title, err)
			}
		}
	})
	if seen != 4 {
		t.Errorf("checked %d examples, want 4", seen)
	}
}

// TestSQLiteSinkInStream runs the quickstart shape end to end in the engine:
// a generated CloudEvents-like stream, batched, into an SQLite file.
func TestSQLiteSinkInStream(t *testing.T) {
	dsn := sqliteFile(t)
	b := service.NewStreamBuilder()
	err := b.SetYAML(`
input:
  generate:
    count: 25
    interval: ""
    mapping: |
      root = {"id": "evt-%d".format(counter()), "type": "petition.created", "source": "controlshift", "time": "2024-05-01T12:00:00Z", "data": {"n": counter()}}
output:
  sql_insert:
    driver: sqlite
    dsn: ` + dsn + `
    table: events
    columns: [ id, type, source, subject, time, payload ]
    args_mapping: root = [ this.id, this.type, this.source, this.subject, this.time, content().string() ]
    suffix: ON CONFLICT (id) DO NOTHING
    init_statement: CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT, source TEXT, subject TEXT, time TEXT, payload TEXT)
    batching:
      count: 10
      period: 50ms
logger:
  level: warn
`)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stream.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := queryStrings(t, dsn, "SELECT count(*), count(subject), min(json_extract(payload, '$.data.n')), max(json_extract(payload, '$.data.n')) FROM events")
	if got[0] != "25|0|1|25" {
		t.Errorf("count|subjects|min|max = %s, want 25|0|1|25", got[0])
	}
}

// Which write errors mean "the database cannot be reached" (held and
// retried after a reconnect) and which are the statement's fault (failed at
// once).
func TestConnectionLost(t *testing.T) {
	lost := []error{
		refusedConnect(t),
		&pgconn.PgError{Code: "08006"},
		&pgconn.PgError{Code: "57P01"},
		fmt.Errorf("inserting 3 rows: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}),
		fmt.Errorf("inserting: %w", driver.ErrBadConn),
		io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED,
	}
	for _, err := range lost {
		if !connectionLost(err) {
			t.Errorf("%v (%T) is not taken for a lost connection", err, err)
		}
	}
	statement := []error{
		&pgconn.PgError{Code: "23505"}, // unique violation
		&pgconn.PgError{Code: "42P01"}, // undefined table
		&pgconn.PgError{Code: "57014"}, // statement timeout
		errors.New("sqlite: constraint failed"),
		errors.New("args_mapping must return an array"),
	}
	for _, err := range statement {
		if connectionLost(err) {
			t.Errorf("%v is taken for a lost connection", err)
		}
	}
}

// A lost connection becomes service.ErrNotConnected (the engine holds the
// batch), except when the write's own context ended, and except for a batch
// that lost the connection maxStrikes times right after reconnects.
func TestWriteErrorHoldsThenStrikesOut(t *testing.T) {
	c := &dbConn{dialect: postgresDialect, log: service.MockResources().Logger()}
	ctx := context.Background()
	lostErr := refusedConnect(t)
	if err := c.writeError(ctx, lostErr); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("first loss: %v", err)
	}
	if err := c.writeError(ctx, &pgconn.PgError{Code: "23505"}); errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("a statement error was held: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.writeError(cancelled, lostErr); errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("a write whose context ended was held: %v", err)
	}
	held := 0
	for range maxStrikes + 2 {
		c.mu.Lock()
		c.lost, c.reconnected = false, true // what a successful Connect leaves
		c.mu.Unlock()
		if err := c.writeError(ctx, lostErr); !errors.Is(err, service.ErrNotConnected) {
			break
		}
		held++
	}
	if held != maxStrikes-1 {
		t.Fatalf("held %d times after reconnects, want %d before failing the batch", held, maxStrikes-1)
	}
	c.wrote()
	if err := c.writeError(ctx, lostErr); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("a new loss after a successful write: %v", err)
	}
}

// refusedConnect is the error pgx gives for a server that is not there.
func refusedConnect(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = pgconn.Connect(context.Background(), "postgres://hookpipe@"+addr+"/db?sslmode=disable&connect_timeout=5")
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("connecting to a closed port: %v, want a *pgconn.ConnectError", err)
	}
	return err
}

// A SQLite sink's readiness probe fails until the output connected and
// passes after, and is removed by Close.
func TestSQLiteReadinessProbe(t *testing.T) {
	conf, err := sqlInsertSpec().ParseYAML(fmt.Sprintf(`
driver: sqlite
dsn: file:%s
table: t
columns: [ id ]
args_mapping: root = [ this.id ]
init_statement: CREATE TABLE IF NOT EXISTS t (id TEXT)
`, filepath.Join(t.TempDir(), "probe.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := service.MockResources()
	o, err := newSQLInsertOutput(conf, res)
	if err != nil {
		t.Fatal(err)
	}
	probes := health.For(res).Probes()
	if len(probes) != 1 {
		t.Fatalf("%d probes, want 1", len(probes))
	}
	ctx := context.Background()
	if err := probes[0].Check(ctx); err == nil {
		t.Error("the probe passed before the output connected")
	}
	if err := o.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := probes[0].Check(ctx); err != nil {
		t.Errorf("probe after connecting: %v", err)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(health.For(res).Probes()); n != 0 {
		t.Errorf("%d probes left after Close", n)
	}
}
