package mirror

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Kind is how an export file is applied to its mirror table.
type Kind string

const (
	// KindFull replaces the whole table with the file's rows.
	KindFull Kind = "full"
	// KindIncremental upserts the file's rows by primary key.
	KindIncremental Kind = "incremental"
)

// LoadsTable is the table, in the mirror schema, that records every load.
const LoadsTable = "hookpipe_mirror_loads"

// Config configures a Loader.
type Config struct {
	// DSN is the Postgres connection string (URL or key=value).
	DSN string
	// Schema holds the mirror tables and LoadsTable.
	Schema string
	// PrimaryKey is the column incremental files are upserted on.
	PrimaryKey string
	// ColumnTypes maps "column" or "table.column" to an SQL type; a column
	// not listed is text. "table.column" wins over "column".
	ColumnTypes map[string]string
	// MaxRows, when positive, fails a load whose file has more data rows.
	MaxRows int64
	// MaxConns is the most loads that run at once (one connection each).
	MaxConns int
	HTTP     HTTPConfig
}

// Job is one export file to load.
type Job struct {
	Table string // as the event names it; validated and lower-cased
	URL   string // the presigned URL, HTML-unescaped
	Kind  Kind
	// LoadID makes a delivery idempotent: a load id already recorded for
	// the table and kind is skipped. Empty means the URL without its query
	// string.
	LoadID string
}

// Result describes a finished (or skipped) load.
type Result struct {
	Table    string // the table name, validated
	Kind     Kind
	URL      string // without query string
	Rows     int64  // data rows in the file
	Bytes    int64  // bytes downloaded
	Duration time.Duration
	// Skipped is true when the load id had already been loaded: nothing
	// was downloaded or changed.
	Skipped bool
}

// Loader downloads export files and loads them into Postgres.
type Loader struct {
	conf Config
	pool *pgxpool.Pool
	dl   *downloader

	setupMu   sync.Mutex
	setupDone bool
}

// NewLoader checks the configuration and prepares a connection pool; no
// connection is opened until the first load.
func NewLoader(conf Config) (*Loader, error) {
	if conf.Schema == "" {
		return nil, errors.New("schema is empty")
	}
	if !identPattern.MatchString(conf.Schema) {
		return nil, fmt.Errorf("schema %q must match %s", conf.Schema, identPattern)
	}
	pk, err := ValidName("primary key column", conf.PrimaryKey)
	if err != nil {
		return nil, err
	}
	conf.PrimaryKey = pk
	types := make(map[string]string, len(conf.ColumnTypes))
	for k, v := range conf.ColumnTypes {
		key := strings.ToLower(k)
		for part := range strings.SplitSeq(key, ".") {
			if !identPattern.MatchString(part) {
				return nil, fmt.Errorf("column_types key %q must be column or table.column, each matching %s", k, identPattern)
			}
		}
		if strings.Count(key, ".") > 1 {
			return nil, fmt.Errorf("column_types key %q must be column or table.column", k)
		}
		v = strings.TrimSpace(v)
		if !typePattern.MatchString(v) {
			return nil, fmt.Errorf("column_types %q: %q does not look like an SQL type name", k, v)
		}
		types[key] = v
	}
	conf.ColumnTypes = types
	pc, err := pgxpool.ParseConfig(conf.DSN)
	if err != nil {
		// pgx leaves the password out of its parse errors.
		return nil, fmt.Errorf("dsn: %w", err)
	}
	if conf.MaxConns < 1 {
		conf.MaxConns = 1
	}
	pc.MaxConns = int32(conf.MaxConns)
	pc.MinConns = 0
	pc.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	return &Loader{conf: conf, pool: pool, dl: newDownloader(conf.HTTP)}, nil
}

// Close closes the connection pool.
func (l *Loader) Close() { l.pool.Close() }

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// setup creates the schema and the loads table once per process.
func (l *Loader) setup(ctx context.Context) error {
	l.setupMu.Lock()
	defer l.setupMu.Unlock()
	if l.setupDone {
		return nil
	}
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		// Serialize concurrent first starts: CREATE ... IF NOT EXISTS races.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(l.conf.Schema, "")); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regnamespace($1) IS NOT NULL", ident(l.conf.Schema)).Scan(&exists); err != nil {
			return err
		}
		// CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when
		// the schema exists, so it runs only when the schema is missing.
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+ident(l.conf.Schema)); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+ident(l.conf.Schema, LoadsTable)+` (
  table_name  text        NOT NULL,
  load_id     text        NOT NULL,
  kind        text        NOT NULL,
  url         text        NOT NULL,
  rows        bigint      NOT NULL,
  bytes       bigint      NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  PRIMARY KEY (table_name, kind, load_id)
)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating %s: %w", ident(l.conf.Schema, LoadsTable), err)
	}
	l.setupDone = true
	return nil
}

// lockKey is the advisory lock that serializes the loads of one table.
func lockKey(schema, table string) int64 {
	sum := sha256.Sum256([]byte("hookpipe_mirror\x00" + schema + "\x00" + table))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// stageName is the name a full load builds its new table version under.
func stageName(table string) string {
	sum := sha256.Sum256([]byte(table))
	return reservedPrefix + "load_" + hex.EncodeToString(sum[:8])
}

// pkName is the primary key constraint name of a mirror table, in
// Postgres's own style, kept within the 63-byte identifier limit.
func pkName(table string) string {
	if len(table) > 58 {
		table = table[:58]
	}
	return table + "_pkey"
}

func (l *Loader) columnType(table, col string) string {
	if t, ok := l.conf.ColumnTypes[table+"."+col]; ok {
		return t
	}
	if t, ok := l.conf.ColumnTypes[col]; ok {
		return t
	}
	return "text"
}

// Load downloads one export file and applies it in one transaction. The
// error names the table and the URL without its query string.
func (l *Loader) Load(ctx context.Context, job Job) (res Result, err error) {
	start := time.Now()
	res = Result{Table: strings.ToLower(job.Table), Kind: job.Kind, URL: RedactURL(job.URL)}
	defer func() {
		res.Duration = time.Since(start)
		if err != nil {
			err = fmt.Errorf("%s load of table %q from %s failed: %w", job.Kind, res.Table, res.URL, err)
		}
	}()
	if res.Table, err = ValidName("table", job.Table); err != nil {
		return res, err
	}
	if job.Kind != KindFull && job.Kind != KindIncremental {
		return res, fmt.Errorf("kind %q is neither %q nor %q", job.Kind, KindFull, KindIncremental)
	}
	if strings.TrimSpace(job.URL) == "" || job.URL == "null" {
		return res, errors.New("the event carries no URL")
	}
	loadID := job.LoadID
	if loadID == "" {
		loadID = res.URL
	}
	if err = l.setup(ctx); err != nil {
		return res, err
	}
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("connecting to Postgres: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			// The load's context may be done; rolling back must not be.
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = tx.Rollback(rctx)
			cancel()
		}
	}()

	// One load per table at a time, across processes: a repeated delivery
	// waits for the first and then finds it recorded.
	if _, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(l.conf.Schema, res.Table)); err != nil {
		return res, err
	}
	var done int
	err = tx.QueryRow(ctx, "SELECT count(*) FROM "+ident(l.conf.Schema, LoadsTable)+" WHERE table_name = $1 AND kind = $2 AND load_id = $3", res.Table, string(job.Kind), loadID).Scan(&done)
	if err != nil {
		return res, err
	}
	if done > 0 {
		res.Skipped = true
		return res, tx.Commit(ctx)
	}

	b, err := l.dl.open(ctx, job.URL)
	if err != nil {
		return res, fmt.Errorf("download: %w", err)
	}
	defer b.Close()
	br := bufio.NewReaderSize(b, 64<<10)
	cols, err := readHeader(br)
	if err != nil {
		res.Bytes = b.n
		return res, err
	}
	src := &errKeeper{r: newEndMarkerGuard(br)}
	if job.Kind == KindFull {
		res.Rows, err = l.loadFull(ctx, tx, res.Table, cols, src)
	} else {
		res.Rows, err = l.loadIncremental(ctx, tx, res.Table, cols, src)
	}
	res.Bytes = b.n
	if err != nil {
		return res, err
	}
	_, err = tx.Exec(ctx, "INSERT INTO "+ident(l.conf.Schema, LoadsTable)+
		" (table_name, load_id, kind, url, rows, bytes, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())",
		res.Table, loadID, string(job.Kind), res.URL, res.Rows, res.Bytes, start)
	if err != nil {
		return res, err
	}
	if err = tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// errKeeper remembers the first error of the COPY source, which Postgres
// otherwise reports only as "COPY from stdin failed: <message>".
type errKeeper struct {
	r   io.Reader
	err error
}

func (e *errKeeper) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// copyIn streams src into table through COPY FROM STDIN in CSV format:
// Postgres parses the CSV itself, so an unquoted empty field is NULL and a
// quoted one ("") the empty string, and nothing but a read buffer is held
// here.
func copyIn(ctx context.Context, tx pgx.Tx, table string, cols []string, src *errKeeper, options string) (int64, error) {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = ident(c)
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, src, "COPY "+table+" ("+strings.Join(quoted, ", ")+") FROM STDIN WITH (FORMAT csv"+options+")")
	if src.err != nil {
		return 0, src.err
	}
	if err != nil {
		return 0, fmt.Errorf("COPY: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (l *Loader) checkRows(rows int64) error {
	if l.conf.MaxRows > 0 && rows > l.conf.MaxRows {
		return fmt.Errorf("the file has %d rows, more than max_rows (%d)", rows, l.conf.MaxRows)
	}
	return nil
}

// loadFull builds a new version of the table and swaps it in: the old
// version stays visible to readers until the transaction commits, and
// the new one appears whole.
func (l *Loader) loadFull(ctx context.Context, tx pgx.Tx, table string, cols []string, src *errKeeper) (int64, error) {
	schema := l.conf.Schema
	stage := stageName(table)
	defs := make([]string, len(cols))
	hasPK := false
	for i, c := range cols {
		defs[i] = ident(c) + " " + l.columnType(table, c)
		hasPK = hasPK || c == l.conf.PrimaryKey
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE "+ident(schema, stage)+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return 0, fmt.Errorf("creating the new table version: %w", err)
	}
	// FREEZE: the table is new in this transaction, so its rows can be
	// written already frozen, and a reader's older snapshot sees them
	// rather than an empty table after the swap.
	rows, err := copyIn(ctx, tx, ident(schema, stage), cols, src, ", FREEZE true")
	if err != nil {
		return 0, err
	}
	if err := l.checkRows(rows); err != nil {
		return 0, err
	}
	// The key is built after the rows are in: one sort instead of a
	// million index insertions.
	if hasPK {
		stmt := "ALTER TABLE " + ident(schema, stage) + " ADD CONSTRAINT " + ident(stage+"_pkey") + " PRIMARY KEY (" + ident(l.conf.PrimaryKey) + ")"
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("primary key %s: %w", l.conf.PrimaryKey, err)
		}
	}
	swap := []string{
		"DROP TABLE IF EXISTS " + ident(schema, table),
		"ALTER TABLE " + ident(schema, stage) + " RENAME TO " + ident(table),
	}
	if hasPK {
		swap = append(swap, "ALTER TABLE "+ident(schema, table)+" RENAME CONSTRAINT "+ident(stage+"_pkey")+" TO "+ident(pkName(table)))
	}
	for _, stmt := range swap {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("swapping in the new table version: %w", err)
		}
	}
	return rows, nil
}

// loadIncremental upserts the file's rows by primary key. The table is
// created when missing, and columns new in the file are added to it.
func (l *Loader) loadIncremental(ctx context.Context, tx pgx.Tx, table string, cols []string, src *errKeeper) (int64, error) {
	schema, pk := l.conf.Schema, l.conf.PrimaryKey
	hasPK := false
	for _, c := range cols {
		hasPK = hasPK || c == pk
	}
	if !hasPK {
		return 0, fmt.Errorf("the CSV header has no %q column to upsert on", pk)
	}
	existing := map[string]string{}
	rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, ident(schema, table))
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return 0, err
		}
		existing[name] = typ
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}

	types := make([]string, len(cols))
	for i, c := range cols {
		if t, ok := existing[c]; ok {
			types[i] = t
		} else {
			types[i] = l.columnType(table, c)
		}
	}
	if len(existing) == 0 {
		defs := make([]string, len(cols))
		for i, c := range cols {
			defs[i] = ident(c) + " " + types[i]
		}
		stmt := "CREATE TABLE " + ident(schema, table) + " (" + strings.Join(defs, ", ") + ", CONSTRAINT " + ident(pkName(table)) + " PRIMARY KEY (" + ident(pk) + "))"
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("creating the table: %w", err)
		}
	} else {
		for i, c := range cols {
			if _, ok := existing[c]; ok {
				continue
			}
			// Schema drift: a column the export did not have before.
			if _, err := tx.Exec(ctx, "ALTER TABLE "+ident(schema, table)+" ADD COLUMN "+ident(c)+" "+types[i]); err != nil {
				return 0, fmt.Errorf("adding column %s: %w", c, err)
			}
		}
	}

	// The file goes to a temporary table first; a sequence number keeps
	// file order, so that of two rows with the same key the later wins.
	const stage, seq = reservedPrefix + "stage", reservedPrefix + "seq"
	defs := make([]string, len(cols))
	quoted := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = ident(c) + " " + types[i]
		quoted[i] = ident(c)
	}
	stmt := "CREATE TEMPORARY TABLE " + ident(stage) + " (" + strings.Join(defs, ", ") + ", " + ident(seq) + " bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DROP"
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return 0, fmt.Errorf("creating the staging table: %w", err)
	}
	n, err := copyIn(ctx, tx, ident("pg_temp", stage), cols, src, "")
	if err != nil {
		return 0, err
	}
	if err := l.checkRows(n); err != nil {
		return 0, err
	}
	var set []string
	for _, c := range cols {
		if c != pk {
			set = append(set, ident(c)+" = EXCLUDED."+ident(c))
		}
	}
	conflict := "DO NOTHING"
	if len(set) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	list := strings.Join(quoted, ", ")
	stmt = "INSERT INTO " + ident(schema, table) + " (" + list + ") SELECT DISTINCT ON (" + ident(pk) + ") " + list +
		" FROM " + ident("pg_temp", stage) + " ORDER BY " + ident(pk) + ", " + ident(seq) + " DESC ON CONFLICT (" + ident(pk) + ") " + conflict
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return 0, fmt.Errorf("upsert: %w", err)
	}
	return n, nil
}
