package sql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/health"

	// The pure-Go SQLite driver, registered as "sqlite"; no cgo needed.
	_ "modernc.org/sqlite"
)

// Fields shared by sql_insert and sql_raw.
const (
	fieldDriver          = "driver"
	fieldDSN             = "dsn"
	fieldInitFiles       = "init_files"
	fieldInitStatement   = "init_statement"
	fieldConnMaxIdleTime = "conn_max_idle_time"
	fieldConnMaxLifeTime = "conn_max_life_time"
	fieldConnMaxIdle     = "conn_max_idle"
	fieldConnMaxOpen     = "conn_max_open"
	fieldArgsMapping     = "args_mapping"
	fieldBatching        = "batching"
)

func driverField() *service.ConfigField {
	return service.NewStringEnumField(fieldDriver, "postgres", "pgx", "sqlite").
		Description("The database driver. `postgres` and `pgx` both use the pgx driver (`pgx` is accepted so configurations written for either name keep working); `sqlite` is a pure-Go SQLite that needs no C library.")
}

func dsnField() *service.ConfigField {
	return service.NewStringField(fieldDSN).
		Description(`The data source name of the target database.

| Driver | DSN format |
|---|---|
| ` + "`postgres`, `pgx`" + ` | ` + "`postgres://[user[:password]@][host][:port][/dbname][?param=value&...]`" + ` or ` + "`host=... user=... dbname=...`" + ` |
| ` + "`sqlite`" + ` | ` + "`file:/path/to/events.db[?param=value&...]`" + ` or a plain path |

Postgres: unset parts fall back to the standard ` + "`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`" + ` environment variables, which keeps the password out of the config. TLS is tried first and plain TCP used if the server does not offer it (` + "`sslmode=prefer`" + `); set ` + "`sslmode=require`" + ` or ` + "`verify-full`" + ` for remote servers.

SQLite: unless the DSN already says otherwise, hookpipe adds ` + "`_pragma=journal_mode(WAL)`" + ` (readers such as the ` + "`sqlite3`" + ` CLI can read while events are written), ` + "`_pragma=busy_timeout(5000)`" + ` (wait up to 5 s for another writer instead of failing), ` + "`_txlock=immediate`" + ` and ` + "`_time_format=sqlite`" + `. Missing parent directories of the database file are created (mode 0750) when the output connects.`).
		Example("postgres://hookpipe@localhost:5432/events?sslmode=disable").
		Example("file:./data/events.db")
}

func connFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringListField(fieldInitFiles).
			Description("SQL files to execute, in order, when the output connects, before `init_statement`; typically the schema the output writes to. Glob patterns are expanded and the matches run in lexical order. The statements must be idempotent (`CREATE TABLE IF NOT EXISTS` ...) because they run again on every start. If one fails, the connection attempt fails and is retried with backoff, so no write happens against a schema that was not set up.").
			Example([]string{"./sql/*.sql"}).
			Optional().
			Advanced(),
		service.NewStringField(fieldInitStatement).
			Description("An SQL statement to execute when the output connects, after `init_files`. It must be idempotent. If it fails, the connection attempt fails and is retried with backoff.").
			Example("CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, payload JSONB NOT NULL)").
			Optional().
			Advanced(),
		service.NewDurationField(fieldConnMaxIdleTime).
			Description("The longest a pooled connection may sit idle before it is closed. Zero or unset keeps idle connections regardless of age.").
			Optional().
			Advanced(),
		service.NewDurationField(fieldConnMaxLifeTime).
			Description("The longest a connection may be reused before it is replaced. Zero or unset never replaces a connection for its age.").
			Optional().
			Advanced(),
		service.NewIntField(fieldConnMaxIdle).
			Description("The most connections kept idle in the pool. Zero or less keeps none.").
			Default(2).
			Advanced(),
		service.NewIntField(fieldConnMaxOpen).
			Description("The most connections open at once. Zero or less means no limit. When unset it is unlimited for Postgres and 1 for SQLite, which allows only one writer at a time, so further connections would only queue on the file lock.").
			Optional().
			Advanced(),
	}
}

// dbConn owns the connection pool of one output: it opens it and runs the
// init statements in Connect, hands it to writes, and closes it.
type dbConn struct {
	dialect  *dialect
	pgConfig *pgx.ConnConfig // postgres only
	dsn      string          // sqlite only: the DSN with our defaults added
	dbPath   string          // sqlite only: the database file, "" in memory

	maxIdleTime, maxLifeTime time.Duration
	maxIdle, maxOpen         int

	initStatements []initStatement

	log *service.Logger

	mu sync.RWMutex
	db *sql.DB
	// lost is set when a write found the database unreachable; the next
	// successful Connect runs the init statements again.
	lost bool
	// reconnected is set by a Connect that reached the database after a
	// loss, until a write succeeds; strikes counts the writes that lost the
	// connection again in that state (see writeError).
	reconnected bool
	strikes     int
	// troubled tells a successful write that there is state to reset,
	// sparing it the lock otherwise.
	troubled atomic.Bool

	removeProbe func()
}

// pingTimeout bounds the check that the database answers, so a server that
// silently drops packets cannot hold Connect (or a readiness probe) for the
// kernel's TCP timeout.
const pingTimeout = 10 * time.Second

// maxStrikes is how many times in a row a batch may lose the connection
// right after the database answered a ping before it is failed instead of
// held: a batch that itself breaks the connection (a server or proxy that
// drops it for its size, say) must not wedge the output forever.
const maxStrikes = 3

type initStatement struct {
	origin string // for error messages: a file path or "init_statement"
	sql    string
}

func newDBConn(conf *service.ParsedConfig, mgr *service.Resources) (*dbConn, error) {
	driver, err := conf.FieldString(fieldDriver)
	if err != nil {
		return nil, err
	}
	c := &dbConn{log: mgr.Logger()}
	if c.dialect, err = dialectFor(driver); err != nil {
		return nil, err
	}
	dsn, err := conf.FieldString(fieldDSN)
	if err != nil {
		return nil, err
	}
	switch c.dialect.name {
	case dialectPostgres:
		// Parsing now turns a malformed DSN into a config error rather than
		// an endless reconnect loop. pgx redacts passwords in its errors.
		if c.pgConfig, err = pgx.ParseConfig(dsn); err != nil {
			return nil, fmt.Errorf("field %s: %w", fieldDSN, err)
		}
	case dialectSQLite:
		if c.dsn, c.dbPath, err = sqliteDSN(dsn); err != nil {
			return nil, fmt.Errorf("field %s: %w", fieldDSN, err)
		}
	}

	if conf.Contains(fieldConnMaxIdleTime) {
		if c.maxIdleTime, err = conf.FieldDuration(fieldConnMaxIdleTime); err != nil {
			return nil, err
		}
	}
	if conf.Contains(fieldConnMaxLifeTime) {
		if c.maxLifeTime, err = conf.FieldDuration(fieldConnMaxLifeTime); err != nil {
			return nil, err
		}
	}
	if c.maxIdle, err = conf.FieldInt(fieldConnMaxIdle); err != nil {
		return nil, err
	}
	if conf.Contains(fieldConnMaxOpen) {
		if c.maxOpen, err = conf.FieldInt(fieldConnMaxOpen); err != nil {
			return nil, err
		}
	} else {
		c.maxOpen = c.dialect.defaultMaxOpen
	}

	if conf.Contains(fieldInitFiles) {
		patterns, err := conf.FieldStringList(fieldInitFiles)
		if err != nil {
			return nil, err
		}
		paths, err := service.Globs(mgr.FS(), patterns...)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", fieldInitFiles, err)
		}
		for _, p := range paths {
			b, err := service.ReadFile(mgr.FS(), p)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", fieldInitFiles, err)
			}
			c.initStatements = append(c.initStatements, initStatement{origin: p, sql: string(b)})
		}
	}
	if conf.Contains(fieldInitStatement) {
		s, err := conf.FieldString(fieldInitStatement)
		if err != nil {
			return nil, err
		}
		if s != "" {
			c.initStatements = append(c.initStatements, initStatement{origin: fieldInitStatement, sql: s})
		}
	}
	return c, nil
}

// connect opens the pool, checks that the database answers and runs the init
// statements. Any failure leaves the output unconnected, and the engine calls
// Connect again with backoff; so a database that is down at startup still
// gets its schema once it comes up.
//
// With a pool already open, Connect is the engine's reconnect after a write
// reported the connection lost (service.ErrNotConnected): it succeeds only
// once the database answers again, and then runs the init statements again in
// case the server came back without the schema (a restored or new server).
func (c *dbConn) connect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db != nil {
		if err := ping(ctx, c.db); err != nil {
			return fmt.Errorf("reaching %s: %w", c.dialect.name, err)
		}
		if c.lost {
			if err := c.runInit(ctx, c.db); err != nil {
				return err
			}
			c.lost, c.reconnected = false, true
			c.log.Infof("Reconnected to %s", c.dialect.name)
		}
		return nil
	}

	var db *sql.DB
	switch c.dialect.name {
	case dialectPostgres:
		db = stdlib.OpenDB(*c.pgConfig)
	case dialectSQLite:
		if err := ensureParentDir(c.dbPath); err != nil {
			return err
		}
		var err error
		if db, err = sql.Open("sqlite", c.dsn); err != nil {
			return err
		}
	}
	db.SetConnMaxIdleTime(c.maxIdleTime)
	db.SetConnMaxLifetime(c.maxLifeTime)
	db.SetMaxIdleConns(c.maxIdle)
	db.SetMaxOpenConns(c.maxOpen)

	if err := ping(ctx, db); err != nil {
		_ = db.Close()
		return fmt.Errorf("connecting to %s: %w", c.dialect.name, err)
	}
	if err := c.runInit(ctx, db); err != nil {
		_ = db.Close()
		return err
	}
	c.db = db
	return nil
}

func ping(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return db.PingContext(ctx)
}

func (c *dbConn) runInit(ctx context.Context, db *sql.DB) error {
	for _, s := range c.initStatements {
		if _, err := db.ExecContext(ctx, s.sql); err != nil {
			return fmt.Errorf("running %s: %w", s.origin, err)
		}
	}
	return nil
}

// registerProbe adds a readiness probe to the stream's health registry (see
// plugins/health): the webhook input then reports not ready until the output
// has connected and, for Postgres, while the database cannot be reached, even
// when nothing is being written. A SQLite file is not a server to reach, and
// a ping would only queue behind writes for its single connection, so its
// probe only checks that the output has connected (the file opened and the
// init statements ran).
func (c *dbConn) registerProbe(typ string, mgr *service.Resources) {
	c.removeProbe = health.For(mgr).Add(health.ComponentName(typ, mgr), func(ctx context.Context) error {
		db, err := c.get()
		if err != nil || c.dialect.name != dialectPostgres {
			return err
		}
		return db.PingContext(ctx)
	})
}

// writeError turns the error of a failed write into what the engine should
// do with the batch. A database that could not be reached gives
// service.ErrNotConnected (wrapped): the engine holds the batch, marks the
// output not connected (so /ready answers 503), calls Connect until the
// database answers and writes the batch again. Any other error (a constraint,
// a type, a syntax error) is returned as it is and fails the batch at once.
func (c *dbConn) writeError(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || !connectionLost(err) {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.troubled.Store(true)
	if c.reconnected {
		c.strikes++
	}
	c.reconnected = false
	if c.strikes >= maxStrikes {
		c.strikes = 0
		return fmt.Errorf("the connection was lost %d times in a row while writing this batch, although the database answers pings: %w", maxStrikes, err)
	}
	if !c.lost {
		c.lost = true
		c.log.Warnf("Lost the connection to %s; holding writes until it answers again: %v", c.dialect.name, err)
	}
	return &lostConnection{err: err}
}

// wrote records a successful write.
func (c *dbConn) wrote() {
	if !c.troubled.Load() {
		return
	}
	c.mu.Lock()
	c.reconnected, c.strikes = false, 0
	c.troubled.Store(false)
	c.mu.Unlock()
}

// lostConnection is a write error that means the database could not be
// reached; errors.Is(err, service.ErrNotConnected) holds.
type lostConnection struct{ err error }

func (e *lostConnection) Error() string        { return "database unreachable: " + e.err.Error() }
func (e *lostConnection) Unwrap() error        { return e.err }
func (e *lostConnection) Is(target error) bool { return target == service.ErrNotConnected }

// connectionLost reports whether err says the database could not be reached
// or dropped the connection, rather than refusing the statement.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is "connection exception"; 57P01-57P03 mean the server
		// is shutting down, crashed or is still starting.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return pgconn.SafeToRetry(err)
}

// get returns the pool, or service.ErrNotConnected before Connect succeeded
// or after Close.
func (c *dbConn) get() (*sql.DB, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.db == nil {
		return nil, service.ErrNotConnected
	}
	return c.db, nil
}

func (c *dbConn) close() error {
	if c.removeProbe != nil {
		c.removeProbe()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db == nil {
		return nil
	}
	err := c.db.Close()
	c.db = nil
	return err
}

// mappedValue evaluates a mapping for message i of its batch.
func mappedValue(exec *service.MessageBatchBloblangExecutor, i int) (any, error) {
	msg, err := exec.Query(i)
	if err != nil {
		return nil, err
	}
	if msg == nil {
		return nil, errors.New("the mapping deleted the message")
	}
	v, err := msg.AsStructured()
	if err != nil {
		// A string or bytes result is kept raw and does not parse as JSON.
		return nil, errors.New("the mapping returned text, not a structured value")
	}
	return v, nil
}

// mappedArgs evaluates an args mapping for message i and checks that it
// produced an array, of exactly want elements when want >= 0.
func mappedArgs(exec *service.MessageBatchBloblangExecutor, i, want int) ([]any, error) {
	v, err := mappedValue(exec, i)
	if err != nil {
		return nil, fmt.Errorf("%s must return an array: %w", fieldArgsMapping, err)
	}
	args, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must return an array, got %T", fieldArgsMapping, v)
	}
	if want >= 0 && len(args) != want {
		return nil, fmt.Errorf("%s returned %d values for %d columns", fieldArgsMapping, len(args), want)
	}
	return args, nil
}

// messageErrors collects the messages of a batch that failed before reaching
// the database (mapping errors), so the rest can still be written and only
// these are nacked.
type messageErrors []messageError

type messageError struct {
	index int
	err   error
}

func (m *messageErrors) fail(i int, err error) {
	*m = append(*m, messageError{index: i, err: err})
}

// result returns nil when every message succeeded, else a BatchError naming
// the failed ones.
func (m messageErrors) result(batch service.MessageBatch) error {
	if len(m) == 0 {
		return nil
	}
	be := service.NewBatchError(batch, fmt.Errorf("%d of %d messages failed: %w", len(m), len(batch), m[0].err))
	for _, f := range m {
		be.Failed(f.index, f.err)
	}
	return be
}
