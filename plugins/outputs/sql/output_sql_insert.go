package sql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	fieldTable   = "table"
	fieldColumns = "columns"
	fieldPrefix  = "prefix"
	fieldSuffix  = "suffix"
	fieldOptions = "options"
)

func sqlInsertSpec() *service.ConfigSpec {
	spec := service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Writes each batch of messages to an SQL table as a single multi-row INSERT, in one transaction.").
		Description(`Each message becomes one row: ` + "`args_mapping`" + ` turns it into an array with one value per entry of ` + "`columns`" + `. A batch is written by one ` + "`INSERT INTO table (columns) VALUES (...), (...), ...`" + ` statement, one round trip to the database. Only when a batch carries more values than the driver accepts in one statement (65535 for Postgres, 32766 for SQLite) is it split into several statements, all inside one transaction.

Messages are acknowledged only after the database has committed them. If the write fails the whole batch is rejected, so the input can retry it (hookpipe's webhook input answers 503 and the provider delivers again). A message whose ` + "`args_mapping`" + ` fails is rejected on its own; the rest of its batch is still written.

Values always travel as bind parameters, never as SQL text. ` + "`table`" + ` and ` + "`columns`" + ` come from the config and must be plain names (letters, digits, underscores; the table may be ` + "`schema.table`" + `) or double-quoted names.

Deliveries can repeat (a provider retries when it did not see the 200, and a failed batch is retried whole), so give the table a key on the event id and set ` + "`suffix: ON CONFLICT (id) DO NOTHING`" + `: a repeated event then leaves exactly one row.

` + "`max_in_flight`" + ` batches may be written at once. Use ` + "`batching`" + ` to gather more messages per statement under load.

A database that cannot be reached is not a failed write: when the connection is refused or dropped (or the server is shutting down) the batch is held, the output reports itself not connected, so the engine's ` + "`/ready`" + ` answers 503, and the engine reconnects with backoff (each attempt pings the database and runs the init statements again) and then writes the batch again. hookpipe's webhook input answers a request waiting on such a batch 503 when its ` + "`timeout`" + ` passes first, and the batch may still be written later: keep the sink idempotent. The output also adds a readiness probe that the webhook input's ` + "`/readyz`" + ` runs: it fails until the output has connected and, for Postgres, while the database does not answer a ping, so readiness fails while the database is down even when nothing is written.`).
		Field(driverField()).
		Field(dsnField()).
		Field(service.NewStringField(fieldTable).
			Description("The table to insert into, optionally qualified by its schema.").
			Example("events").
			Example("hookpipe.events")).
		Field(service.NewStringListField(fieldColumns).
			Description("The columns to fill, in the order of the values returned by `args_mapping`.").
			Example([]string{"id", "type", "source", "subject", "time", "payload"})).
		Field(service.NewBloblangField(fieldArgsMapping).
			Description("A Bloblang mapping that returns, for each message, an array with one value per column. Strings, numbers, booleans, null and timestamps go in as they are; for Postgres an object or array can fill a `json`/`jsonb` column directly, for SQLite it is stored as JSON text.").
			Example("root = [ this.id, this.type, this.source, this.subject, this.time, content().string() ]").
			Example(`root = [ meta("provider"), this.data.id, now() ]`)).
		Field(service.NewStringField(fieldPrefix).
			Description("SQL placed before `INSERT`, such as a common table expression.").
			Optional().
			Advanced()).
		Field(service.NewStringField(fieldSuffix).
			Description("SQL appended after the values, typically a conflict clause that makes redelivery harmless.").
			Example("ON CONFLICT (id) DO NOTHING").
			Example("ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload").
			Optional().
			Advanced()).
		Field(service.NewStringListField(fieldOptions).
			Description("Keywords placed between `INSERT` and `INTO`, for example `OR IGNORE` on SQLite.").
			Example([]string{"OR IGNORE"}).
			Optional().
			Advanced()).
		Field(service.NewOutputMaxInFlightField().
			Description("The most batches written at the same time.")).
		Fields(connFields()...).
		Field(service.NewBatchPolicyField(fieldBatching))

	spec = spec.Example("Postgres events table",
		"Writes hookpipe's canonical CloudEvents envelope to Postgres, one row per event keyed on the event id; a redelivered event leaves one row. The whole envelope is kept as JSONB, so any attribute can be queried later.",
		`
output:
  sql_insert:
    driver: postgres
    dsn: postgres://hookpipe@localhost:5432/hookpipe?sslmode=disable
    table: events
    columns: [ id, type, source, subject, time, payload ]
    args_mapping: |
      root = [ this.id, this.type, this.source, this.subject, this.time, content().string() ]
    suffix: ON CONFLICT (id) DO NOTHING
    init_statement: |
      CREATE TABLE IF NOT EXISTS events (
        id          TEXT PRIMARY KEY,
        type        TEXT NOT NULL,
        source      TEXT NOT NULL,
        subject     TEXT,
        time        TIMESTAMPTZ,
        payload     JSONB NOT NULL,
        received_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )
    batching:
      count: 100
      period: 50ms
`).
		Example("SQLite file sink",
			"Keeps events in a local SQLite file that needs no server; the directory is created if missing. The file stays readable while events arrive, for example with `sqlite3 data/events.db 'SELECT type, count(*) FROM events GROUP BY type'`.",
			`
output:
  sql_insert:
    driver: sqlite
    dsn: file:./data/events.db
    table: events
    columns: [ id, type, source, subject, time, payload ]
    args_mapping: |
      root = [ this.id, this.type, this.source, this.subject, this.time, content().string() ]
    suffix: ON CONFLICT (id) DO NOTHING
    init_statement: |
      CREATE TABLE IF NOT EXISTS events (
        id      TEXT PRIMARY KEY,
        type    TEXT NOT NULL,
        source  TEXT NOT NULL,
        subject TEXT,
        time    TEXT,
        payload TEXT NOT NULL
      )
`)
	return spec
}

func init() {
	err := service.RegisterBatchOutput("sql_insert", sqlInsertSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (out service.BatchOutput, policy service.BatchPolicy, maxInFlight int, err error) {
			if policy, err = conf.FieldBatchPolicy(fieldBatching); err != nil {
				return
			}
			if maxInFlight, err = conf.FieldMaxInFlight(); err != nil {
				return
			}
			out, err = newSQLInsertOutput(conf, mgr)
			return
		})
	if err != nil {
		panic(err)
	}
}

type sqlInsertOutput struct {
	conn        *dbConn
	argsMapping *bloblang.Executor
	query       insertQuery
}

func newSQLInsertOutput(conf *service.ParsedConfig, mgr *service.Resources) (*sqlInsertOutput, error) {
	conn, err := newDBConn(conf, mgr)
	if err != nil {
		return nil, err
	}
	o := &sqlInsertOutput{conn: conn}

	table, err := conf.FieldString(fieldTable)
	if err != nil {
		return nil, err
	}
	if err := checkIdentifier(table, 2); err != nil {
		return nil, fmt.Errorf("field %s: %w", fieldTable, err)
	}
	columns, err := conf.FieldStringList(fieldColumns)
	if err != nil {
		return nil, err
	}
	if len(columns) == 0 {
		return nil, fmt.Errorf("field %s: at least one column is required", fieldColumns)
	}
	for _, c := range columns {
		if err := checkIdentifier(c, 1); err != nil {
			return nil, fmt.Errorf("field %s: %w", fieldColumns, err)
		}
	}
	if o.argsMapping, err = conf.FieldBloblang(fieldArgsMapping); err != nil {
		return nil, err
	}

	var prefix, suffix string
	var options []string
	if conf.Contains(fieldPrefix) {
		if prefix, err = conf.FieldString(fieldPrefix); err != nil {
			return nil, err
		}
	}
	if conf.Contains(fieldSuffix) {
		if suffix, err = conf.FieldString(fieldSuffix); err != nil {
			return nil, err
		}
	}
	if conf.Contains(fieldOptions) {
		if options, err = conf.FieldStringList(fieldOptions); err != nil {
			return nil, err
		}
		for _, opt := range options {
			if !isKeywords(opt) {
				return nil, fmt.Errorf("field %s: %q is not a keyword list", fieldOptions, opt)
			}
		}
	}
	o.query = newInsertQuery(conn.dialect, prefix, options, table, columns, suffix)
	conn.registerProbe("sql_insert", mgr)
	return o, nil
}

// isKeywords accepts space-separated words of letters, like "OR IGNORE".
func isKeywords(s string) bool {
	words := strings.Fields(s)
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			if c := w[i]; !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

func (o *sqlInsertOutput) Connect(ctx context.Context) error {
	return o.conn.connect(ctx)
}

func (o *sqlInsertOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	db, err := o.conn.get()
	if err != nil {
		return err
	}
	cols := o.query.columns
	exec := batch.BloblangExecutor(o.argsMapping)
	args := make([]any, 0, len(batch)*cols)
	var failed messageErrors
	for i := range batch {
		row, err := mappedArgs(exec, i, cols)
		if err == nil {
			args, err = o.conn.dialect.appendArgs(args, row)
		}
		if err != nil {
			failed.fail(i, err)
		}
	}
	if len(args) > 0 {
		if err := o.insert(ctx, db, args); err != nil {
			return o.conn.writeError(ctx, err)
		}
		o.conn.wrote()
	}
	return failed.result(batch)
}

// insert writes the rows in args with as few statements as the parameter
// limit allows; more than one statement runs in a transaction.
func (o *sqlInsertOutput) insert(ctx context.Context, db *sql.DB, args []any) error {
	chunkArgs := o.query.rowsPerStatement() * o.query.columns
	if len(args) <= chunkArgs {
		// A single statement is atomic on its own: no BEGIN/COMMIT round trips.
		if _, err := db.ExecContext(ctx, o.query.build(len(args)/o.query.columns), args...); err != nil {
			return fmt.Errorf("inserting %d rows: %w", len(args)/o.query.columns, err)
		}
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	full := o.query.build(chunkArgs / o.query.columns)
	for start := 0; start < len(args); start += chunkArgs {
		end := min(start+chunkArgs, len(args))
		q := full
		if end-start < chunkArgs {
			q = o.query.build((end - start) / o.query.columns)
		}
		if _, err := tx.ExecContext(ctx, q, args[start:end]...); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("inserting rows %d to %d: %w", start/o.query.columns, end/o.query.columns-1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func (o *sqlInsertOutput) Close(ctx context.Context) error {
	return o.conn.close()
}

// insertQuery builds multi-row INSERT statements for a fixed table and
// column list.
type insertQuery struct {
	dialect *dialect
	head    string // "[prefix ]INSERT [options ]INTO table (c1, c2) VALUES "
	tail    string // " suffix" or ""
	columns int
	// maxParams caps the bind parameters of one statement; the dialect's
	// limit, lowered in tests.
	maxParams int
}

func newInsertQuery(d *dialect, prefix string, options []string, table string, columns []string, suffix string) insertQuery {
	var b strings.Builder
	if prefix = strings.TrimSpace(prefix); prefix != "" {
		b.WriteString(prefix)
		b.WriteByte(' ')
	}
	b.WriteString("INSERT ")
	for _, o := range options {
		b.WriteString(strings.Join(strings.Fields(o), " "))
		b.WriteByte(' ')
	}
	b.WriteString("INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(strings.Join(columns, ", "))
	b.WriteString(") VALUES ")
	q := insertQuery{dialect: d, head: b.String(), columns: len(columns), maxParams: d.maxParams}
	if suffix = strings.TrimSpace(suffix); suffix != "" {
		q.tail = " " + suffix
	}
	return q
}

// rowsPerStatement is how many rows fit under the parameter limit.
func (q *insertQuery) rowsPerStatement() int {
	return max(1, q.maxParams/q.columns)
}

// build returns the statement for rows rows: placeholders numbered from 1.
func (q *insertQuery) build(rows int) string {
	// A placeholder and its ", ": "?" or "$" and up to as many digits as
	// the highest number has.
	perValue := 3
	if q.dialect.dollar {
		perValue = 3
		for n := rows * q.columns; n > 0; n /= 10 {
			perValue++
		}
	}
	b := make([]byte, 0, len(q.head)+len(q.tail)+rows*(q.columns*perValue+4))
	b = append(b, q.head...)
	n := 1
	for r := 0; r < rows; r++ {
		if r > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '(')
		for c := 0; c < q.columns; c++ {
			if c > 0 {
				b = append(b, ", "...)
			}
			b = q.dialect.appendPlaceholder(b, n)
			n++
		}
		b = append(b, ')')
	}
	b = append(b, q.tail...)
	return string(b)
}
