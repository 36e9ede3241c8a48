// Package mirror provides the controlshift_table_mirror processor, which keeps
// a Postgres mirror of the tables that ControlShift Labs exports through its
// bulk-data webhooks (data.full_table_exported, data.incremental_table_exported).
//
// It is a processor rather than an output so that the load runs before the
// message reaches the output: the webhook is answered only after the load
// committed, a failed load marks the message errored and the config routes it
// to a `reject` output (the webhook answers 503), and the other events of the
// same endpoint keep flowing to whatever output the config names.
package mirror

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	fieldDSN         = "dsn"
	fieldSchema      = "schema"
	fieldURL         = "url"
	fieldTable       = "table"
	fieldKind        = "kind"
	fieldLoadID      = "load_id"
	fieldPrimaryKey  = "primary_key"
	fieldColumnTypes = "column_types"
	fieldTimeout     = "timeout"
	fieldMaxRows     = "max_rows"
	fieldMaxInFlight = "max_in_flight"
	fieldHTTP        = "http"
	fieldHeaderTO    = "response_header_timeout"
	fieldIdleTO      = "read_idle_timeout"
	fieldAllowed     = "allowed_hosts"
)

// Metadata keys set on every message the processor handles.
const (
	MetaStatus = "mirror_status" // loaded, skipped or failed
	MetaTable  = "mirror_table"
	MetaKind   = "mirror_kind"
	MetaRows   = "mirror_rows"
	MetaBytes  = "mirror_bytes"
	MetaError  = "mirror_error"
)

func processorSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Integration").
		Summary("Loads the CSV table exports announced by ControlShift Labs' bulk-data webhooks into a Postgres mirror: a full export replaces the table atomically, an incremental export is upserted by primary key.").
		Description(`
Each message is one bulk-data event (`+"`data.full_table_exported`, `data.incremental_table_exported`"+`). The
processor downloads the file at `+"`url`"+` by streaming it straight into Postgres's `+"`COPY ... FROM STDIN (FORMAT csv)`"+`: only
a read buffer is held in memory, whatever the file size. The message is passed on once the load has **committed**, so
a `+"`webhook_server`"+` input answers 200 only then. Any failure marks the message errored (route it to a `+"`reject`"+`
output: the webhook answers 503 and ControlShift retries) and leaves the mirror as it was.

- **Full export**: the rows go into a new table version (created in the same transaction, loaded with `+"`COPY ... FREEZE`"+`,
  primary key built afterwards), then the old table is dropped and the new one renamed in its place, all in one
  transaction: readers see the old table until the commit and the new one, whole, after it.
- **Incremental export**: the rows are copied into a temporary table and upserted into the mirror table
  (`+"`INSERT ... ON CONFLICT (<primary_key>) DO UPDATE`"+` of every column in the file), in one transaction. A missing
  table is created with the primary key; columns new in the file are added (`+"`ALTER TABLE ... ADD COLUMN`"+`); columns
  absent from the file are left untouched. Of two rows with the same key in one file the later wins. A file without
  the primary key column fails.
- **Columns** come from the CSV header, lower-cased; table and column names must match `+"`^[a-z_][a-z0-9_]{0,62}$`"+`
  (and not start with `+"`hookpipe_`"+`), so neither the event nor the file can inject SQL. Every column is `+"`text`"+`
  unless `+"`column_types`"+` says otherwise.
- **Empty field vs NULL**: Postgres's CSV rules apply: an unquoted empty field is NULL, a quoted empty field
  (`+"`\"\"`"+`) the empty string.
- **Idempotent**: each load is recorded in `+"`<schema>.hookpipe_mirror_loads`"+` (table, load id, kind, URL without query,
  rows, bytes, start and end time) in the load's own transaction. A delivery whose `+"`load_id`"+` (by default the event id,
  stable across ControlShift's retries) is already recorded for the table and kind is skipped and passed on, so a
  retry, even a late one after a newer export, never reloads an old file. Delete its row to force a reload. Loads
  of one table are serialized (a Postgres advisory lock), also across processes.
- **Failures**: a status other than 200 (an expired presigned URL answers 403), a body shorter than its
  `+"`Content-Length`"+` or cut off, a download that stalls, malformed CSV, a value its column type refuses, a
  file over `+"`max_rows`"+`: the transaction rolls back. The error and the log line name the table and the URL
  **without its query string** (a presigned URL's credentials are never logged). A file with a line `+"`\\.`"+`, which
  `+"`COPY`"+` would take as the end of the data, is refused rather than loaded short.
- A full load recreates the table: indexes, grants and views added to it do not survive (a dependent view makes the
  swap fail).

Metadata set: `+"`mirror_status`"+` (`+"`loaded`, `skipped` or `failed`"+`), `+"`mirror_table`, `mirror_kind`, `mirror_rows`, `mirror_bytes`"+`
and, on failure, `+"`mirror_error`"+`. Metrics: `+"`mirror_loads_total{table,kind,status}`, `mirror_rows_loaded_total{table,kind}`,\n`mirror_bytes_total{table,kind}`, `mirror_load_duration_ns{table,kind}`"+`.`).
		Fields(
			service.NewStringField(fieldDSN).
				Description("The Postgres connection string (`postgres://user@host:5432/db?sslmode=...` or `host=... user=...`). Unset parts fall back to the standard `PG*` environment variables, which keeps the password out of the config.").
				Example("postgres://hookpipe@localhost:5432/reporting?sslmode=disable").
				Secret(),
			service.NewStringField(fieldSchema).
				Description("The schema of the mirror tables and of `hookpipe_mirror_loads`; created when missing.").
				Default("controlshift"),
			service.NewInterpolatedStringField(fieldURL).
				Description("The export file's URL. `controlshift_webhook` has already HTML-unescaped it.").
				Default(`${! json("data.url").or("") }`),
			service.NewInterpolatedStringField(fieldTable).
				Description("The mirror table, as ControlShift names it.").
				Default(`${! json("data.table").or("") }`),
			service.NewInterpolatedStringField(fieldKind).
				Description("`full` or `incremental`.").
				Default(`${! if @event_type == "data.full_table_exported" { "full" } else { "incremental" } }`),
			service.NewInterpolatedStringField(fieldLoadID).
				Description("What makes two deliveries the same load. Empty means the URL without its query string.").
				Default(`${! @event_id.or("") }`).
				Advanced(),
			service.NewStringField(fieldPrimaryKey).
				Description("The column incremental exports are upserted on; also the primary key of tables built from full exports that have it.").
				Default("id"),
			service.NewStringMapField(fieldColumnTypes).
				Description("SQL types of columns, keyed by `column` (any table) or `table.column` (which wins). Other columns are `text`. A type applies when a table or column is created; a value it refuses fails the load.").
				Example(map[string]string{"id": "bigint", "created_at": "timestamptz", "petitions.goal": "integer"}).
				Default(map[string]any{}),
			service.NewDurationField(fieldTimeout).
				Description("The longest one load (download and transaction) may take.").
				Default("15m"),
			service.NewIntField(fieldMaxRows).
				Description("When positive, a file with more data rows fails its load (checked before the commit).").
				Default(0).
				Advanced(),
			service.NewIntField(fieldMaxInFlight).
				Description("The most loads that run at once (one Postgres connection each). Loads of the same table always run one after the other, in batch order.").
				Default(4),
			service.NewObjectField(fieldHTTP,
				service.NewDurationField(fieldHeaderTO).
					Description("How long to wait for the response headers of a download.").
					Default("30s"),
				service.NewDurationField(fieldIdleTO).
					Description("A download that delivers no data for this long fails.").
					Default("60s"),
				service.NewStringListField(fieldAllowed).
					Description("When not empty, the only hosts a URL (or a redirect) may point at: a host name, or a suffix starting with a dot. An entry may hold several, comma-separated; empty entries are ignored.").
					Example([]string{".s3.amazonaws.com"}).
					Default([]string{}),
			).Description("Download settings.").Advanced(),
		).
		Example("Mirror bulk-data exports, other events elsewhere", `Only the bulk-data events reach the processor; a failed load is rejected so the webhook answers 503.`, `
pipeline:
  processors:
    - controlshift_webhook: {}
    - switch:
        - check: '@event_status == "valid" && @event_resource == "data"'
          processors:
            - controlshift_table_mirror:
                dsn: ${HOOKPIPE_POSTGRES_DSN}
                column_types: { id: bigint }
output:
  switch:
    cases:
      - check: '@mirror_status == "failed"'
        output:
          reject: '${! error() }'
      - output:
          drop: {}
`)
}

func init() {
	err := service.RegisterBatchProcessor("controlshift_table_mirror", processorSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchProcessor, error) {
		return newProcessor(conf, mgr)
	})
	if err != nil {
		panic(err)
	}
}

type processor struct {
	loader                   *Loader
	url, table, kind, loadID *service.InterpolatedString
	timeout                  time.Duration
	sem                      chan struct{}
	log                      *service.Logger

	mLoads    *service.MetricCounter
	mRows     *service.MetricCounter
	mBytes    *service.MetricCounter
	mDuration *service.MetricTimer
}

func newProcessor(conf *service.ParsedConfig, mgr *service.Resources) (*processor, error) {
	var (
		c   Config
		err error
	)
	if c.DSN, err = conf.FieldString(fieldDSN); err != nil {
		return nil, err
	}
	if c.Schema, err = conf.FieldString(fieldSchema); err != nil {
		return nil, err
	}
	if c.PrimaryKey, err = conf.FieldString(fieldPrimaryKey); err != nil {
		return nil, err
	}
	if c.ColumnTypes, err = conf.FieldStringMap(fieldColumnTypes); err != nil {
		return nil, err
	}
	maxRows, err := conf.FieldInt(fieldMaxRows)
	if err != nil {
		return nil, err
	}
	c.MaxRows = int64(maxRows)
	if c.MaxConns, err = conf.FieldInt(fieldMaxInFlight); err != nil {
		return nil, err
	}
	if c.MaxConns < 1 {
		return nil, fmt.Errorf("%s must be at least 1", fieldMaxInFlight)
	}
	hc := conf.Namespace(fieldHTTP)
	if c.HTTP.ResponseHeaderTimeout, err = hc.FieldDuration(fieldHeaderTO); err != nil {
		return nil, err
	}
	if c.HTTP.ReadIdleTimeout, err = hc.FieldDuration(fieldIdleTO); err != nil {
		return nil, err
	}
	hosts, err := hc.FieldStringList(fieldAllowed)
	if err != nil {
		return nil, err
	}
	for _, entry := range hosts {
		// An entry may list several hosts, so one environment variable can.
		for h := range strings.SplitSeq(entry, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.HTTP.AllowedHosts = append(c.HTTP.AllowedHosts, h)
			}
		}
	}

	p := &processor{log: mgr.Logger(), sem: make(chan struct{}, c.MaxConns)}
	if p.timeout, err = conf.FieldDuration(fieldTimeout); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  **service.InterpolatedString
	}{{fieldURL, &p.url}, {fieldTable, &p.table}, {fieldKind, &p.kind}, {fieldLoadID, &p.loadID}} {
		if *f.dst, err = conf.FieldInterpolatedString(f.name); err != nil {
			return nil, err
		}
	}
	if p.loader, err = NewLoader(c); err != nil {
		return nil, err
	}
	m := mgr.Metrics()
	p.mLoads = m.NewCounter("mirror_loads_total", "table", "kind", "status")
	p.mRows = m.NewCounter("mirror_rows_loaded_total", "table", "kind")
	p.mBytes = m.NewCounter("mirror_bytes_total", "table", "kind")
	p.mDuration = m.NewTimer("mirror_load_duration_ns", "table", "kind")
	return p, nil
}

// job reads one message's load from the interpolated fields.
func (p *processor) job(msg *service.Message) (Job, error) {
	var (
		j   Job
		err error
	)
	if j.URL, err = p.url.TryString(msg); err != nil {
		return j, fmt.Errorf("field %s: %w", fieldURL, err)
	}
	if j.Table, err = p.table.TryString(msg); err != nil {
		return j, fmt.Errorf("field %s: %w", fieldTable, err)
	}
	kind, err := p.kind.TryString(msg)
	if err != nil {
		return j, fmt.Errorf("field %s: %w", fieldKind, err)
	}
	j.Kind = Kind(strings.ToLower(strings.TrimSpace(kind)))
	if j.LoadID, err = p.loadID.TryString(msg); err != nil {
		return j, fmt.Errorf("field %s: %w", fieldLoadID, err)
	}
	return j, nil
}

// ProcessBatch loads every message's file. Loads of different tables run
// concurrently (up to max_in_flight); loads of one table run in batch
// order. Each message carries its own outcome.
func (p *processor) ProcessBatch(ctx context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	out := make(service.MessageBatch, len(batch))
	jobs := make([]Job, len(batch))
	var order []string
	groups := map[string][]int{}
	for i, msg := range batch {
		out[i] = msg.Copy()
		j, err := p.job(out[i])
		if err != nil {
			p.fail(out[i], Result{Table: j.Table, Kind: j.Kind, URL: RedactURL(j.URL)}, err)
			continue
		}
		jobs[i] = j
		key := strings.ToLower(j.Table)
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], i)
	}
	var wg sync.WaitGroup
	for _, key := range order {
		wg.Go(func() {
			for _, i := range groups[key] {
				p.load(ctx, out[i], jobs[i])
			}
		})
	}
	wg.Wait()
	return []service.MessageBatch{out}, nil
}

func (p *processor) load(ctx context.Context, msg *service.Message, j Job) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		p.fail(msg, Result{Table: j.Table, Kind: j.Kind, URL: RedactURL(j.URL)}, fmt.Errorf("%s load of table %q not started: %w", j.Kind, j.Table, ctx.Err()))
		return
	}
	defer func() { <-p.sem }()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	res, err := p.loader.Load(ctx, j)
	if err != nil {
		p.fail(msg, res, err)
		return
	}
	table, kind := res.Table, string(res.Kind)
	msg.MetaSetMut(MetaTable, table)
	msg.MetaSetMut(MetaKind, kind)
	msg.MetaSetMut(MetaRows, strconv.FormatInt(res.Rows, 10))
	msg.MetaSetMut(MetaBytes, strconv.FormatInt(res.Bytes, 10))
	log := p.log.With("table", table, "kind", kind, "url", res.URL)
	if res.Skipped {
		msg.MetaSetMut(MetaStatus, "skipped")
		p.mLoads.Incr(1, table, kind, "skipped")
		log.Infof("bulk-data export of table %s already loaded (load id %q): skipped", table, j.LoadID)
		return
	}
	msg.MetaSetMut(MetaStatus, "loaded")
	p.mLoads.Incr(1, table, kind, "loaded")
	p.mRows.Incr(res.Rows, table, kind)
	p.mBytes.Incr(res.Bytes, table, kind)
	p.mDuration.Timing(res.Duration.Nanoseconds(), table, kind)
	log.With("rows", res.Rows, "bytes", res.Bytes, "duration", res.Duration.String()).
		Infof("bulk-data %s load of table %s committed: %d rows, %d bytes in %s", kind, table, res.Rows, res.Bytes, res.Duration.Round(time.Millisecond))
}

// fail marks a message whose load failed. Table label values are only
// names that passed validation, so the metric's series stay bounded.
func (p *processor) fail(msg *service.Message, res Result, err error) {
	label := "invalid"
	if t, verr := ValidName("table", res.Table); verr == nil {
		label = t
	}
	kind := string(res.Kind)
	if res.Kind != KindFull && res.Kind != KindIncremental {
		kind = "invalid"
	}
	p.mLoads.Incr(1, label, kind, "failed")
	msg.MetaSetMut(MetaStatus, "failed")
	msg.MetaSetMut(MetaTable, label)
	msg.MetaSetMut(MetaKind, kind)
	msg.MetaSetMut(MetaError, err.Error())
	msg.SetError(err)
	p.log.With("table", label, "kind", kind, "url", res.URL).Errorf("%v", err)
}

// Close closes the connection pool.
func (p *processor) Close(context.Context) error {
	p.loader.Close()
	return nil
}
