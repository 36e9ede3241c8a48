package sql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	fieldQuery              = "query"
	fieldQueries            = "queries"
	fieldWhen               = "when"
	fieldUnsafeDynamicQuery = "unsafe_dynamic_query"
)

func rawQueryField() *service.ConfigField {
	return service.NewStringField(fieldQuery).
		Description("The statement to execute for each message. Postgres takes placeholders `$1`, `$2`, ...; SQLite takes `?`.").
		Example("INSERT INTO events (id, payload) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload")
}

func rawArgsMappingField() *service.ConfigField {
	return service.NewBloblangField(fieldArgsMapping).
		Description("A Bloblang mapping that returns, for each message, an array with one value per placeholder of the query.").
		Example("root = [ this.id, content().string() ]").
		Optional()
}

func sqlRawSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Executes an SQL statement for each message; every batch runs in one transaction.").
		Description(`For each message the query runs with the values `+"`args_mapping`"+` returns bound to its placeholders. All statements of a batch run in a single transaction: either all of them take effect or none do. With Postgres the whole batch is sent as one pipeline, a single round trip. Messages are acknowledged only after the commit; if any statement fails the whole batch is rejected and can be retried by the input. A message whose mapping fails is rejected on its own and left out of the transaction.

A database that cannot be reached is not a failed write: when the connection is refused or dropped (or the server is shutting down) the batch is held, the output reports itself not connected, so the engine's `+"`/ready`"+` answers 503, and the engine reconnects with backoff (each attempt pings the database and runs the init statements again) and then writes the batch again. hookpipe's webhook input answers a request waiting on such a batch 503 when its `+"`timeout`"+` passes first, and the batch may still be written later: keep the sink idempotent. The output also adds a readiness probe that the webhook input's `+"`/readyz`"+` runs: it fails until the output has connected and, for Postgres, while the database does not answer a ping, so readiness fails while the database is down even when nothing is written.

With `+"`queries`"+`, several statements can run per message, or, when entries carry a `+"`when`"+` condition, the first entry whose condition holds (or that has none) is chosen per message.

Values always travel as bind parameters. With `+"`unsafe_dynamic_query`"+` the query may contain interpolations such as `+"`${! meta(\"table\") }`"+`, for instance to pick a table per message. Each interpolated value may contain only letters, digits, underscores and dots, which cannot end a quoted string, start a comment or add a statement; a message whose value does not qualify is rejected.`).
		Field(driverField()).
		Field(dsnField()).
		Field(rawQueryField().Optional()).
		Field(service.NewBoolField(fieldUnsafeDynamicQuery).
			Description("Allow interpolation functions (`${! ... }`) in queries. Each interpolated value must consist only of letters, digits, underscores and dots, or the message is rejected.").
			Default(false).
			Advanced()).
		Field(rawArgsMappingField()).
		Field(service.NewObjectListField(fieldQueries,
			rawQueryField(),
			rawArgsMappingField(),
			service.NewBloblangField(fieldWhen).
				Description("A Bloblang mapping returning a boolean. When any entry has one, each message runs only the first entry whose condition is true or that has no condition; otherwise every entry runs for every message.").
				Example(`root = this.type.has_suffix(".deleted")`).
				Optional(),
		).
			Description("Statements to execute for each message, in order, in the same transaction. Used instead of, or after, `query`.").
			Optional().
			Advanced()).
		Field(service.NewOutputMaxInFlightField().
			Description("The most batches written at the same time.")).
		Fields(connFields()...).
		Field(service.NewBatchPolicyField(fieldBatching)).
		LintRule(`root = if !this.exists("query") && this.queries.or([]).length() == 0 { [ "either query or queries is required" ] }`).
		Example("Upsert the latest state of an entity",
			"Keeps one row per subject with the most recent event, next to an append-only events table written in the same transaction.",
			`
output:
  sql_raw:
    driver: postgres
    dsn: postgres://hookpipe@localhost:5432/hookpipe?sslmode=disable
    queries:
      - query: INSERT INTO events (id, type, payload) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING
        args_mapping: root = [ this.id, this.type, content().string() ]
      - query: |
          INSERT INTO entities (subject, last_type, last_time) VALUES ($1, $2, $3)
          ON CONFLICT (subject) DO UPDATE SET last_type = EXCLUDED.last_type, last_time = EXCLUDED.last_time
          WHERE entities.last_time <= EXCLUDED.last_time
        args_mapping: root = [ this.subject, this.type, this.time ]
`).
		Example("One table per provider",
			"Picks the table from metadata. The interpolated value must be a plain name, so it cannot inject SQL.",
			`
output:
  sql_raw:
    driver: sqlite
    dsn: file:./data/events.db
    unsafe_dynamic_query: true
    query: INSERT OR IGNORE INTO events_${! meta("provider") } (id, payload) VALUES (?, ?)
    args_mapping: root = [ this.id, content().string() ]
`)
}

func init() {
	err := service.RegisterBatchOutput("sql_raw", sqlRawSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (out service.BatchOutput, policy service.BatchPolicy, maxInFlight int, err error) {
			if policy, err = conf.FieldBatchPolicy(fieldBatching); err != nil {
				return
			}
			if maxInFlight, err = conf.FieldMaxInFlight(); err != nil {
				return
			}
			out, err = newSQLRawOutput(conf, mgr)
			return
		})
	if err != nil {
		panic(err)
	}
}

type rawStatement struct {
	static      string
	dynamic     []queryPart // set instead of static with unsafe_dynamic_query
	argsMapping *bloblang.Executor
	when        *bloblang.Executor
}

// queryPart is a piece of a dynamic query: literal text or an interpolation.
type queryPart struct {
	text string
	expr *service.InterpolatedString
}

type sqlRawOutput struct {
	conn       *dbConn
	statements []rawStatement
	routed     bool // some statement has a when condition
}

func newSQLRawOutput(conf *service.ParsedConfig, mgr *service.Resources) (*sqlRawOutput, error) {
	conn, err := newDBConn(conf, mgr)
	if err != nil {
		return nil, err
	}
	dynamic, err := conf.FieldBool(fieldUnsafeDynamicQuery)
	if err != nil {
		return nil, err
	}

	var confs []*service.ParsedConfig
	if conf.Contains(fieldQuery) {
		confs = append(confs, conf)
	}
	if conf.Contains(fieldQueries) {
		list, err := conf.FieldObjectList(fieldQueries)
		if err != nil {
			return nil, err
		}
		confs = append(confs, list...)
	}
	if len(confs) == 0 {
		return nil, errors.New("either field query or field queries is required")
	}

	o := &sqlRawOutput{conn: conn}
	for n, qc := range confs {
		var s rawStatement
		q, err := qc.FieldString(fieldQuery)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(q) == "" {
			return nil, fmt.Errorf("query %d is empty", n)
		}
		if dynamic {
			if s.dynamic, err = parseDynamicQuery(q); err != nil {
				return nil, fmt.Errorf("query %d: %w", n, err)
			}
		} else {
			s.static = q
		}
		if qc.Contains(fieldArgsMapping) {
			if s.argsMapping, err = qc.FieldBloblang(fieldArgsMapping); err != nil {
				return nil, err
			}
		}
		if qc.Contains(fieldWhen) {
			if s.when, err = qc.FieldBloblang(fieldWhen); err != nil {
				return nil, err
			}
			o.routed = true
		}
		o.statements = append(o.statements, s)
	}
	conn.registerProbe("sql_raw", mgr)
	return o, nil
}

// parseDynamicQuery splits a query into literal text and interpolations, so
// that each interpolated value can be checked on its own before it is
// spliced in.
func parseDynamicQuery(q string) ([]queryPart, error) {
	// The engine's parser reports syntax errors with positions.
	if _, err := service.NewInterpolatedString(q); err != nil {
		return nil, err
	}
	var parts []queryPart
	var text strings.Builder
	for i := 0; i < len(q); {
		rest := q[i:]
		switch {
		case strings.HasPrefix(rest, "${{!"):
			// Escaped: stands for a literal "${!...}".
			end := strings.Index(rest, "}}")
			if end < 0 {
				return nil, fmt.Errorf("unterminated ${{! at offset %d", i)
			}
			text.WriteString("${!" + rest[4:end] + "}")
			i += end + 2
		case strings.HasPrefix(rest, "${!"):
			expr, n, err := firstInterpolation(rest)
			if err != nil {
				return nil, fmt.Errorf("at offset %d: %w", i, err)
			}
			if text.Len() > 0 {
				parts = append(parts, queryPart{text: text.String()})
				text.Reset()
			}
			parts = append(parts, queryPart{expr: expr})
			i += n
		default:
			text.WriteByte(q[i])
			i++
		}
	}
	if text.Len() > 0 {
		parts = append(parts, queryPart{text: text.String()})
	}
	return parts, nil
}

// firstInterpolation finds the interpolation at the start of s: the shortest
// prefix ending in "}" that parses as one. A longer candidate can only be
// right if no shorter one parses, which is how the engine's own parser reads
// it too.
func firstInterpolation(s string) (*service.InterpolatedString, int, error) {
	for j := 3; j < len(s); j++ {
		if s[j] != '}' {
			continue
		}
		expr, err := service.NewInterpolatedString(s[:j+1])
		if err != nil {
			continue
		}
		if _, static := expr.Static(); static {
			continue
		}
		return expr, j + 1, nil
	}
	return nil, 0, errors.New("unterminated ${! interpolation")
}

func (o *sqlRawOutput) Connect(ctx context.Context) error {
	return o.conn.connect(ctx)
}

// pendingStatement is one statement of a batch, ready to run.
type pendingStatement struct {
	msg  int
	sql  string
	args []any
}

// batchExecutors evaluates one statement's mappings against one batch.
type batchExecutors struct {
	args, when *service.MessageBatchBloblangExecutor
	dynamic    []*service.MessageBatchInterpolationExecutor // nil for literal parts
}

func (o *sqlRawOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	db, err := o.conn.get()
	if err != nil {
		return err
	}
	execs := make([]batchExecutors, len(o.statements))
	for n, s := range o.statements {
		if s.argsMapping != nil {
			execs[n].args = batch.BloblangExecutor(s.argsMapping)
		}
		if s.when != nil {
			execs[n].when = batch.BloblangExecutor(s.when)
		}
		for _, p := range s.dynamic {
			var e *service.MessageBatchInterpolationExecutor
			if p.expr != nil {
				e = batch.InterpolationExecutor(p.expr)
			}
			execs[n].dynamic = append(execs[n].dynamic, e)
		}
	}

	var pending []pendingStatement
	var failed messageErrors
	for i := range batch {
		mark := len(pending)
		var err error
		if pending, err = o.appendStatements(pending, execs, i); err != nil {
			pending = pending[:mark]
			failed.fail(i, err)
		}
	}
	if len(pending) > 0 {
		if o.conn.dialect.name == dialectPostgres {
			err = runPipelined(ctx, db, pending)
		} else {
			err = runInTx(ctx, db, pending)
		}
		if err != nil {
			return o.conn.writeError(ctx, err)
		}
		o.conn.wrote()
	}
	return failed.result(batch)
}

// appendStatements appends the statements message i runs.
func (o *sqlRawOutput) appendStatements(dst []pendingStatement, execs []batchExecutors, i int) ([]pendingStatement, error) {
	for n, s := range o.statements {
		if execs[n].when != nil {
			v, err := mappedValue(execs[n].when, i)
			if err != nil {
				return dst, fmt.Errorf("query %d %s must return a boolean: %w", n, fieldWhen, err)
			}
			b, ok := v.(bool)
			if !ok {
				return dst, fmt.Errorf("query %d %s must return a boolean, got %T", n, fieldWhen, v)
			}
			if !b {
				continue
			}
		}
		p := pendingStatement{msg: i, sql: s.static}
		if s.dynamic != nil {
			var err error
			if p.sql, err = s.render(execs[n].dynamic, i); err != nil {
				return dst, fmt.Errorf("query %d: %w", n, err)
			}
		}
		if execs[n].args != nil {
			row, err := mappedArgs(execs[n].args, i, -1)
			if err != nil {
				return dst, fmt.Errorf("query %d: %w", n, err)
			}
			if p.args, err = o.conn.dialect.appendArgs(make([]any, 0, len(row)), row); err != nil {
				return dst, fmt.Errorf("query %d: %w", n, err)
			}
		}
		dst = append(dst, p)
		if o.routed {
			break // the first matching entry is the only one
		}
	}
	return dst, nil
}

// render builds a dynamic query for message i, refusing interpolated values
// that could change the statement's structure.
func (s *rawStatement) render(execs []*service.MessageBatchInterpolationExecutor, i int) (string, error) {
	var b strings.Builder
	for k, p := range s.dynamic {
		if p.expr == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := execs[k].TryString(i)
		if err != nil {
			return "", fmt.Errorf("interpolation: %w", err)
		}
		if !isSQLWord(v) {
			if len(v) > 64 {
				v = v[:64] + "..."
			}
			return "", fmt.Errorf("interpolated value %q may only contain letters, digits, underscores and dots", v)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// runPipelined sends all statements to Postgres as one pipeline. Without
// explicit BEGIN/COMMIT, the statements before the pipeline's single Sync
// form one implicit transaction: all commit or none do, and the results
// (read up to that Sync) arrive only after the commit.
func runPipelined(ctx context.Context, db *sql.DB, stmts []pendingStatement) error {
	var err error
	// A connection that breaks before anything was sent is safe to replace
	// and try again; database/sql does the same for its own calls.
	for attempt := 0; attempt < 3; attempt++ {
		var conn *sql.Conn
		if conn, err = db.Conn(ctx); err != nil {
			return err
		}
		err = conn.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn()
			b := &pgx.Batch{}
			for _, s := range stmts {
				b.Queue(s.sql, s.args...)
			}
			br := pc.SendBatch(ctx, b)
			for _, s := range stmts {
				if _, err := br.Exec(); err != nil {
					_ = br.Close()
					if pgconn.SafeToRetry(err) {
						return driver.ErrBadConn
					}
					return fmt.Errorf("message %d: %w", s.msg, err)
				}
			}
			if err := br.Close(); err != nil {
				return fmt.Errorf("committing: %w", err)
			}
			return nil
		})
		_ = conn.Close()
		if !errors.Is(err, driver.ErrBadConn) {
			return err
		}
	}
	return err
}

// runInTx runs the statements one by one in a transaction.
func runInTx(ctx context.Context, db *sql.DB, stmts []pendingStatement) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s.sql, s.args...); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("message %d: %w", s.msg, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func (o *sqlRawOutput) Close(ctx context.Context) error {
	return o.conn.close()
}
