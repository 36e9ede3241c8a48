package sql

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func parseRaw(yaml string) (*sqlRawOutput, error) {
	conf, err := sqlRawSpec().ParseYAML(yaml, nil)
	if err != nil {
		return nil, err
	}
	return newSQLRawOutput(conf, service.MockResources())
}

func connectedRaw(t testing.TB, yaml string) *sqlRawOutput {
	t.Helper()
	o, err := parseRaw(yaml)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	return o
}

func TestSQLRawConfigValidation(t *testing.T) {
	invalid := map[string]string{
		"no query": `
driver: sqlite
dsn: file:/tmp/x.db
`,
		"empty query": `
driver: sqlite
dsn: file:/tmp/x.db
query: "  "
`,
		"bad interpolation": `
driver: sqlite
dsn: file:/tmp/x.db
unsafe_dynamic_query: true
query: INSERT INTO ${! meta("t" } VALUES (?)
`,
		"bad when": `
driver: sqlite
dsn: file:/tmp/x.db
queries:
  - query: DELETE FROM t WHERE id = ?
    when: 'root = this.deleted ==='
`,
	}
	for name, y := range invalid {
		if _, err := parseRaw(y); err == nil {
			t.Errorf("%s: config accepted", name)
		}
	}
}

func TestSQLRawLintRequiresAQuery(t *testing.T) {
	for yaml, wantLint := range map[string]bool{
		"sql_raw:\n  driver: sqlite\n  dsn: file:/tmp/x.db\n":                                   true,
		"sql_raw:\n  driver: sqlite\n  dsn: file:/tmp/x.db\n  queries: []\n":                    true,
		"sql_raw:\n  driver: sqlite\n  dsn: file:/tmp/x.db\n  query: SELECT 1\n":                false,
		"sql_raw:\n  driver: sqlite\n  dsn: file:/tmp/x.db\n  queries: [ {query: SELECT 1} ]\n": false,
	} {
		err := service.NewStreamBuilder().AddOutputYAML(yaml)
		if (err != nil) != wantLint {
			t.Errorf("%s: lint = %v, want a lint: %v", yaml, err, wantLint)
		}
	}
}

func TestParseDynamicQuery(t *testing.T) {
	parts, err := parseDynamicQuery(`INSERT INTO events_${! meta("provider") } (id, note) VALUES (?, '${{!literal}}') -- ${! "a}b" }`)
	if err != nil {
		t.Fatal(err)
	}
	var shape []string
	for _, p := range parts {
		if p.expr != nil {
			shape = append(shape, "<expr>")
		} else {
			shape = append(shape, p.text)
		}
	}
	want := []string{"INSERT INTO events_", "<expr>", " (id, note) VALUES (?, '${!literal}') -- ", "<expr>"}
	if strings.Join(shape, "|") != strings.Join(want, "|") {
		t.Errorf("parts:\n got %q\nwant %q", shape, want)
	}
}

func TestDynamicQueryRejectsUnsafeValues(t *testing.T) {
	dsn := sqliteFile(t)
	o := connectedRaw(t, `
driver: sqlite
dsn: `+dsn+`
unsafe_dynamic_query: true
init_statement: |
  CREATE TABLE events_cs (id TEXT PRIMARY KEY);
  CREATE TABLE events_city (id TEXT PRIMARY KEY);
  CREATE TABLE victims (id TEXT);
  INSERT INTO victims VALUES ('still here');
query: INSERT INTO events_${! meta("provider") } (id) VALUES (?)
args_mapping: root = [ this.id ]
`)
	mk := func(provider, id string) *service.Message {
		m := service.NewMessage([]byte(`{"id":"` + id + `"}`))
		m.MetaSetMut("provider", provider)
		return m
	}
	batch := service.MessageBatch{
		mk("cs", "1"),
		mk("cs (id) VALUES ('x'); DROP TABLE victims; --", "2"),
		mk("city", "3"),
		mk("c s", "4"),
		mk("cs'", "5"),
	}
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
	if len(failed) != 3 || failed[0] != 1 || failed[1] != 3 || failed[2] != 4 {
		t.Errorf("failed messages = %v, want [1 3 4]", failed)
	}
	if got := queryStrings(t, dsn, "SELECT id FROM events_cs UNION ALL SELECT id FROM events_city UNION ALL SELECT id FROM victims"); strings.Join(got, ",") != "1,3,still here" {
		t.Errorf("rows = %v", got)
	}
}

func TestSQLRawBatchIsOneTransaction(t *testing.T) {
	dsn := sqliteFile(t)
	o := connectedRaw(t, `
driver: sqlite
dsn: `+dsn+`
init_statement: CREATE TABLE events (id TEXT PRIMARY KEY, n INTEGER)
query: INSERT INTO events (id, n) VALUES (?, ?)
args_mapping: root = [ this.id, this.n ]
`)
	ctx := context.Background()
	if err := o.WriteBatch(ctx, jsonBatch(`{"id":"a","n":1}`)); err != nil {
		t.Fatal(err)
	}
	// b and c run before the duplicate a fails: all three roll back.
	err := o.WriteBatch(ctx, jsonBatch(`{"id":"b","n":2}`, `{"id":"c","n":3}`, `{"id":"a","n":4}`))
	if err == nil {
		t.Fatal("batch with a duplicate key succeeded")
	}
	if !strings.Contains(err.Error(), "message 2") {
		t.Errorf("error does not name the failing message: %v", err)
	}
	if got := queryStrings(t, dsn, "SELECT id, n FROM events ORDER BY id"); strings.Join(got, ",") != "a|1" {
		t.Errorf("rows = %v, want only a|1", got)
	}
	if err := o.WriteBatch(ctx, jsonBatch(`{"id":"b","n":2}`, `{"id":"c","n":3}`)); err != nil {
		t.Fatal(err)
	}
	if got := queryStrings(t, dsn, "SELECT count(*), sum(n) FROM events"); got[0] != "3|6" {
		t.Errorf("count|sum = %s, want 3|6", got[0])
	}
}

func TestSQLRawQueriesAndWhen(t *testing.T) {
	dsn := sqliteFile(t)
	all := connectedRaw(t, `
driver: sqlite
dsn: `+dsn+`
init_statement: |
  CREATE TABLE events (id TEXT PRIMARY KEY, subject TEXT);
  CREATE TABLE latest (subject TEXT PRIMARY KEY, id TEXT);
queries:
  - query: INSERT INTO events (id, subject) VALUES (?, ?)
    args_mapping: root = [ this.id, this.subject ]
  - query: INSERT INTO latest (subject, id) VALUES (?, ?) ON CONFLICT (subject) DO UPDATE SET id = excluded.id
    args_mapping: root = [ this.subject, this.id ]
`)
	ctx := context.Background()
	if err := all.WriteBatch(ctx, jsonBatch(`{"id":"1","subject":"s1"}`, `{"id":"2","subject":"s1"}`, `{"id":"3","subject":"s2"}`)); err != nil {
		t.Fatal(err)
	}
	if got := queryStrings(t, dsn, "SELECT count(*) FROM events"); got[0] != "3" {
		t.Errorf("events = %s, want 3", got[0])
	}
	if got := queryStrings(t, dsn, "SELECT subject, id FROM latest ORDER BY subject"); strings.Join(got, ",") != "s1|2,s2|3" {
		t.Errorf("latest = %v", got)
	}

	routed := connectedRaw(t, `
driver: sqlite
dsn: `+dsn+`
queries:
  - query: DELETE FROM latest WHERE subject = ?
    args_mapping: root = [ this.subject ]
    when: root = this.type == "deleted"
  - query: INSERT INTO latest (subject, id) VALUES (?, ?) ON CONFLICT (subject) DO UPDATE SET id = excluded.id
    args_mapping: root = [ this.subject, this.id ]
`)
	if err := routed.WriteBatch(ctx, jsonBatch(`{"type":"deleted","subject":"s1"}`, `{"type":"updated","subject":"s3","id":"9"}`)); err != nil {
		t.Fatal(err)
	}
	if got := queryStrings(t, dsn, "SELECT subject, id FROM latest ORDER BY subject"); strings.Join(got, ",") != "s2|3,s3|9" {
		t.Errorf("latest after routing = %v, want s2|3,s3|9", got)
	}

	// A when that is not a boolean rejects only its message.
	bad := connectedRaw(t, `
driver: sqlite
dsn: `+dsn+`
queries:
  - query: DELETE FROM latest WHERE subject = ?
    args_mapping: root = [ this.subject ]
    when: root = this.type
`)
	err := bad.WriteBatch(ctx, jsonBatch(`{"type":"x","subject":"s2"}`))
	var be *service.BatchError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "boolean") {
		t.Errorf("non-boolean when: %v", err)
	}
}

func TestSQLRawSkipsEmptyBatchAfterFailures(t *testing.T) {
	o := connectedRaw(t, `
driver: sqlite
dsn: `+sqliteFile(t)+`
init_statement: CREATE TABLE events (id TEXT)
query: INSERT INTO events (id) VALUES (?)
args_mapping: root = [ this.id ]
`)
	err := o.WriteBatch(context.Background(), jsonBatch(`nope`, `nope`))
	var be *service.BatchError
	if !errors.As(err, &be) || be.IndexedErrors() != 2 {
		t.Errorf("want a BatchError for both messages, got %v", err)
	}
}

func BenchmarkSQLRawSQLite(b *testing.B) {
	o := connectedRaw(b, `
driver: sqlite
dsn: `+sqliteFile(b)+`
init_statement: CREATE TABLE events (id TEXT PRIMARY KEY, type TEXT, payload TEXT)
query: INSERT INTO events (id, type, payload) VALUES (?, ?, ?)
args_mapping: root = [ this.id, this.type, content().string() ]
`)
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
