package sql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func parseInsert(yaml string) (*sqlInsertOutput, error) {
	conf, err := sqlInsertSpec().ParseYAML(yaml, nil)
	if err != nil {
		return nil, err
	}
	return newSQLInsertOutput(conf, service.MockResources())
}

func sqliteFile(t testing.TB) string {
	return "file:" + filepath.Join(t.TempDir(), "events.db")
}

func jsonBatch(docs ...string) service.MessageBatch {
	b := make(service.MessageBatch, len(docs))
	for i, d := range docs {
		b[i] = service.NewMessage([]byte(d))
	}
	return b
}

// queryStrings reads rows through a separate connection to the same file.
func queryStrings(t testing.TB, dsn, query string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = v.String
			if !v.Valid {
				parts[i] = "NULL"
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSQLInsertConfigValidation(t *testing.T) {
	const base = `
driver: %s
dsn: %s
table: %s
columns: %s
args_mapping: 'root = [ this.id ]'
`
	valid := []string{
		fmt.Sprintf(base, "postgres", "postgres://u@localhost/db", "events", "[ id ]"),
		fmt.Sprintf(base, "pgx", "host=localhost user=u dbname=db", "hookpipe.events", "[ id ]"),
		fmt.Sprintf(base, "sqlite", "file:/tmp/x.db", `'"Events"'`, `[ '"order"' ]`),
	}
	for _, y := range valid {
		if _, err := parseInsert(y); err != nil {
			t.Errorf("rejected valid config %s: %v", y, err)
		}
	}

	invalid := map[string]string{
		"unknown driver":      fmt.Sprintf(base, "mysql", "u@tcp(localhost)/db", "events", "[ id ]"),
		"injected table":      fmt.Sprintf(base, "postgres", "postgres://u@localhost/db", "'events; DROP TABLE users'", "[ id ]"),
		"three part table":    fmt.Sprintf(base, "postgres", "postgres://u@localhost/db", "a.b.c", "[ id ]"),
		"column with space":   fmt.Sprintf(base, "postgres", "postgres://u@localhost/db", "events", "[ 'id, payload' ]"),
		"column with comment": fmt.Sprintf(base, "postgres", "postgres://u@localhost/db", "events", "[ 'id--' ]"),
		"no columns":          fmt.Sprintf(base, "postgres", "postgres://u@localhost/db", "events", "[]"),
		"bad postgres dsn":    fmt.Sprintf(base, "postgres", "postgres://u@localhost:notaport/db", "events", "[ id ]"),
		"bad sqlite dsn":      fmt.Sprintf(base, "sqlite", "'file:/x.db?a=%zz'", "events", "[ id ]"),
		"bad options": `
driver: sqlite
dsn: file:/tmp/x.db
table: events
columns: [ id ]
args_mapping: 'root = [ this.id ]'
options: [ "OR IGNORE; DROP TABLE x" ]
`,
		"missing args_mapping": `
driver: sqlite
dsn: file:/tmp/x.db
table: events
columns: [ id ]
`,
		"broken args_mapping": `
driver: sqlite
dsn: file:/tmp/x.db
table: events
columns: [ id ]
args_mapping: 'root = [ this.id'
`,
	}
	for name, y := range invalid {
		if _, err := parseInsert(y); err == nil {
			t.Errorf("%s: config accepted", name)
		}
	}
}

func TestSQLInsertDSNErrorHidesPassword(t *testing.T) {
	_, err := parseInsert(`
driver: postgres
dsn: postgres://u:s3cr3t@localhost:notaport/db
table: events
columns: [ id ]
args_mapping: 'root = [ this.id ]'
`)
	if err == nil {
		t.Fatal("bad DSN accepted")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error reveals the password: %v", err)
	}
}

func TestInsertQueryBuild(t *testing.T) {
	pg := newInsertQuery(postgresDialect, "", nil, "events", []string{"id", "type", "payload"}, "ON CONFLICT (id) DO NOTHING")
	if got, want := pg.build(1), "INSERT INTO events (id, type, payload) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING"; got != want {
		t.Errorf("postgres 1 row:\n got %s\nwant %s", got, want)
	}
	if got, want := pg.build(3), "INSERT INTO events (id, type, payload) VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9) ON CONFLICT (id) DO NOTHING"; got != want {
		t.Errorf("postgres 3 rows:\n got %s\nwant %s", got, want)
	}

	lite := newInsertQuery(sqliteDialect, " WITH x AS (SELECT 1) ", []string{" OR  IGNORE "}, `main."Events"`, []string{"id", `"order"`}, "  ")
	if got, want := lite.build(2), `WITH x AS (SELECT 1) INSERT OR IGNORE INTO main."Events" (id, "order") VALUES (?, ?), (?, ?)`; got != want {
		t.Errorf("sqlite 2 rows:\n got %s\nwant %s", got, want)
	}

	// The last placeholder of a full Postgres statement is the limit itself.
	full := pg.build(pg.rowsPerStatement())
	if !strings.HasSuffix(full, "($65533, $65534, $65535) ON CONFLICT (id) DO NOTHING") {
		t.Errorf("full postgres statement ends %q", full[len(full)-60:])
	}
}

func TestInsertRowsPerStatement(t *testing.T) {
	six := []string{"id", "type", "source", "subject", "time", "payload"}
	cases := []struct {
		d    *dialect
		cols []string
		want int
	}{
		{postgresDialect, six, 65535 / 6},
		{sqliteDialect, six, 32766 / 6},
		{postgresDialect, []string{"id"}, 65535},
		{sqliteDialect, []string{"id", "x"}, 16383},
	}
	for _, c := range cases {
		q := newInsertQuery(c.d, "", nil, "t", c.cols, "")
		if got := q.rowsPerStatement(); got != c.want {
			t.Errorf("%s with %d columns: %d rows per statement, want %d", c.d.name, len(c.cols), got, c.want)
		}
	}
}

func newSQLiteInsert(t testing.TB, dsn, extra string) *sqlInsertOutput {
	t.Helper()
	o, err := parseInsert(`
driver: sqlite
dsn: ` + dsn + `
table: events
columns: [ id, type, payload ]
args_mapping: 'root = [ this.id, this.type, content().string() ]'
init_statement: CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL)
` + extra)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	return o
}

func events(from, to int) service.MessageBatch {
	var docs []string
	for i := from; i < to; i++ {
		docs = append(docs, fmt.Sprintf(`{"id":"evt-%05d","type":"petition.created","n":%d}`, i, i))
	}
	return jsonBatch(docs...)
}

func TestSQLInsertSQLiteWritesBatch(t *testing.T) {
	dsn := sqliteFile(t)
	o := newSQLiteInsert(t, dsn, "suffix: ON CONFLICT (id) DO NOTHING")
	ctx := context.Background()

	if err := o.WriteBatch(ctx, events(0, 3)); err != nil {
		t.Fatal(err)
	}
	// A redelivery plus one new event: the conflict clause keeps one row each.
	if err := o.WriteBatch(ctx, events(1, 4)); err != nil {
		t.Fatal(err)
	}
	got := queryStrings(t, dsn, "SELECT id, type, json_extract(payload, '$.n') FROM events ORDER BY id")
	want := []string{"evt-00000|petition.created|0", "evt-00001|petition.created|1", "evt-00002|petition.created|2", "evt-00003|petition.created|3"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSQLInsertChunksAtTheRealSQLiteLimit(t *testing.T) {
	dsn := sqliteFile(t)
	o, err := parseInsert(`
driver: sqlite
dsn: ` + dsn + `
table: pairs
columns: [ a, b ]
args_mapping: 'root = [ this.a, this.b ]'
init_statement: CREATE TABLE pairs (a INTEGER PRIMARY KEY, b TEXT)
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())

	// 16384 rows of 2 values is 32768 parameters: two more than SQLite takes
	// in one statement.
	const n = 16384
	batch := make(service.MessageBatch, n)
	for i := range batch {
		batch[i] = service.NewMessage([]byte(fmt.Sprintf(`{"a":%d,"b":"v%d"}`, i, i)))
	}
	if err := o.WriteBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := queryStrings(t, dsn, "SELECT count(*), min(a), max(a) FROM pairs"); got[0] != "16384|0|16383" {
		t.Errorf("count|min|max = %s", got[0])
	}
}

func TestSQLInsertChunksShareOneTransaction(t *testing.T) {
	dsn := sqliteFile(t)
	o := newSQLiteInsert(t, dsn, "")
	o.query.maxParams = 6 // two rows of three columns per statement
	ctx := context.Background()

	if err := o.WriteBatch(ctx, events(0, 5)); err != nil {
		t.Fatal(err)
	}
	if got := queryStrings(t, dsn, "SELECT count(*) FROM events"); got[0] != "5" {
		t.Fatalf("count = %s, want 5", got[0])
	}

	// Rows 10..13 go in the first two statements; row 4 in the third
	// collides with the primary key. Nothing of the batch may remain.
	batch := append(events(10, 14), events(4, 5)...)
	err := o.WriteBatch(ctx, batch)
	if err == nil {
		t.Fatal("write with a duplicate key succeeded")
	}
	var be *service.BatchError
	if errors.As(err, &be) {
		t.Errorf("a database failure should fail the whole batch, got a BatchError: %v", err)
	}
	if got := queryStrings(t, dsn, "SELECT count(*) FROM events"); got[0] != "5" {
		t.Errorf("count after failed batch = %s, want 5 (earlier statements rolled back)", got[0])
	}
}

func TestSQLInsertRejectsOnlyMessagesWhoseMappingFails(t *testing.T) {
	dsn := sqliteFile(t)
	o := newSQLiteInsert(t, dsn, "")
	batch := jsonBatch(
		`{"id":"a","type":"t"}`,
		`not json`,
		`{"id":"c","type":"t"}`,
	)
	idx := batch.Index()
	err := o.WriteBatch(context.Background(), batch)
	var be *service.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("want a BatchError, got %v", err)
	}
	var failed []int
	be.WalkMessagesIndexedBy(idx, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed = append(failed, i)
		}
		return true
	})
	if len(failed) != 1 || failed[0] != 1 {
		t.Errorf("failed messages = %v, want [1]", failed)
	}
	if got := queryStrings(t, dsn, "SELECT id FROM events ORDER BY id"); strings.Join(got, ",") != "a,c" {
		t.Errorf("rows = %v, want a,c", got)
	}
}

func TestSQLInsertArgsMappingShape(t *testing.T) {
	dsn := sqliteFile(t)
	o, err := parseInsert(`
driver: sqlite
dsn: ` + dsn + `
table: events
columns: [ id, type ]
args_mapping: 'root = if this.shape == "object" { {"id": this.id} } else if this.shape == "short" { [ this.id ] } else { [ this.id, "t" ] }'
init_statement: CREATE TABLE events (id TEXT PRIMARY KEY, type TEXT)
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())
	batch := jsonBatch(`{"id":"1","shape":"object"}`, `{"id":"2","shape":"short"}`, `{"id":"3"}`)
	err = o.WriteBatch(context.Background(), batch)
	var be *service.BatchError
	if !errors.As(err, &be) || be.IndexedErrors() != 2 {
		t.Fatalf("want a BatchError for 2 messages, got %v", err)
	}
	if !strings.Contains(err.Error(), "2 of 3 messages failed") {
		t.Errorf("headline = %v", err)
	}
	if got := queryStrings(t, dsn, "SELECT id FROM events"); len(got) != 1 || got[0] != "3" {
		t.Errorf("rows = %v, want [3]", got)
	}
}

func TestSQLInsertWriteBeforeConnect(t *testing.T) {
	o, err := parseInsert(`
driver: sqlite
dsn: ` + sqliteFile(t) + `
table: events
columns: [ id ]
args_mapping: 'root = [ this.id ]'
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.WriteBatch(context.Background(), events(0, 1)); !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("write before connect = %v, want ErrNotConnected", err)
	}
}

func BenchmarkInsertQueryBuild(b *testing.B) {
	cols := []string{"id", "type", "source", "subject", "time", "payload"}
	for _, d := range []*dialect{postgresDialect, sqliteDialect} {
		q := newInsertQuery(d, "", nil, "events", cols, "ON CONFLICT (id) DO NOTHING")
		for _, rows := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/rows=%d", d.name, rows), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = q.build(rows)
				}
			})
		}
	}
}

func BenchmarkSQLInsertSQLite(b *testing.B) {
	dsn := sqliteFile(b)
	o := newSQLiteInsert(b, dsn, "")
	const size = 100
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := o.WriteBatch(ctx, events(n, n+size)); err != nil {
			b.Fatal(err)
		}
		n += size
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
}
