// Package metrics provides the prometheus metrics exporter: every metric of
// the engine and of the hookpipe plugins, served for scraping at /metrics on
// the engine's HTTP server.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	fieldUseHistogramTiming = "use_histogram_timing"
	fieldHistogramBuckets   = "histogram_buckets"
	fieldSummaryObjectives  = "summary_quantiles_objectives"
	fieldObjQuantile        = "quantile"
	fieldObjError           = "error"
	fieldAddProcessMetrics  = "add_process_metrics"
	fieldAddGoMetrics       = "add_go_metrics"
	fieldFileOutputPath     = "file_output_path"
)

func exporterSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Summary("Serves every metric of the stream for Prometheus to scrape, at `/metrics` (and `/stats`) on the service's HTTP server (`http.address`, `0.0.0.0:4195` by default).").
		Description(`
Counters and gauges keep their names and labels. Timers (their values are nanoseconds, their names end in `+"`_ns`"+`)
become summaries of the nanosecond values, with the quantiles of `+"`summary_quantiles_objectives`"+`; with
`+"`use_histogram_timing: true`"+` they become histograms whose values are converted to **seconds**, bucketed by
`+"`histogram_buckets`"+`. See https://prometheus.io/docs/practices/histograms/ for the trade-off: histograms can be
aggregated across instances, summaries cannot.

A name that Prometheus does not accept is rewritten rather than dropped: every character outside `+"`[a-zA-Z0-9_:]`"+`
(outside `+"`[a-zA-Z0-9_]`"+` for label names) becomes `+"`_`"+`, and a leading digit gets a `+"`_`"+` in front. A label
named `+"`quantile`"+` on a summary or `+"`le`"+` on a histogram is exported as `+"`exported_quantile`"+` /
`+"`exported_le`"+`. Label values that are not valid UTF-8 have the offending bytes replaced.

The metrics live in a registry of their own, so a program embedding the stream can keep its own metrics apart.

### Metrics of the webhook plugins

Next to the engine's own metrics (`+"`input_received`"+`, `+"`processor_*`"+`, `+"`output_sent`"+`, `+"`output_batch_sent`"+`,
`+"`output_error`"+`, ...), the webhook components add:

| metric | type | labels | counts |
| --- | --- | --- | --- |
| `+"`webhook_requests_total`"+` | counter | `+"`provider`"+`, `+"`endpoint`"+`, `+"`status`"+` | every reply of the `+"`webhook_server`"+` input, by HTTP status; a path that matches no endpoint counts under `+"`endpoint=\"unknown\"`"+` |
| `+"`webhook_auth_failures_total`"+` | counter | `+"`provider`"+`, `+"`endpoint`"+` | deliveries rejected with 401 |
| `+"`webhook_request_duration_ns`"+` | timer | `+"`provider`"+`, `+"`endpoint`"+` | time from receiving a request to replying to it, which for a 200 includes the write to the output |
| `+"`webhook_batch_size`"+` | gauge | | how many requests the last batch gathered |
| `+"`webhook_batches_total`"+`, `+"`webhook_batch_messages_total`"+` | counter | | batches handed to the pipeline and the requests in them: their rates' ratio is the mean batch size |
| `+"`webhook_events_total`"+` | counter | `+"`provider`"+`, `+"`type`"+`, `+"`status`"+` | events parsed by `+"`controlshift_webhook`"+` and `+"`thecity_webhook`"+`; `+"`type`"+` is `+"`unknown`"+` for a type missing from the catalog, `+"`status`"+` is the `+"`event_status`"+` metadata |

The endpoint label is the endpoint's configured path (never a secret path token). Dead letters, the events a
config routes away from the main sinks, are `+"`webhook_events_total{status!=\"valid\"}`"+`. The size of the batches each
sink writes is `+"`rate(output_sent[5m]) / rate(output_batch_sent[5m])`"+` per output (`+"`label`"+`/`+"`path`"+`).`).
		Fields(
			service.NewBoolField(fieldUseHistogramTiming).
				Description("Export timers as histograms (values in seconds) instead of summaries (values in nanoseconds).").
				Advanced().
				Default(false),
			service.NewFloatListField(fieldHistogramBuckets).
				Description("The histogram bucket upper bounds, in seconds, in increasing order. Empty means the Prometheus client's default buckets (5 ms to 10 s). Used with `use_histogram_timing: true`.").
				Advanced().
				Default([]any{}),
			service.NewObjectListField(fieldSummaryObjectives,
				service.NewFloatField(fieldObjQuantile).
					Description("The quantile, from 0 to 1.").
					Default(0.0),
				service.NewFloatField(fieldObjError).
					Description("The absolute error allowed on the quantile's rank: 0.9 with 0.01 reports a value between the 89th and the 91st percentile.").
					Default(0.0),
			).
				Description("The quantiles that summaries report, with their allowed error. Empty means the default of 0.5, 0.9 and 0.99. Used with `use_histogram_timing: false`.").
				Advanced().
				Default([]any{
					map[string]any{fieldObjQuantile: 0.5, fieldObjError: 0.05},
					map[string]any{fieldObjQuantile: 0.9, fieldObjError: 0.01},
					map[string]any{fieldObjQuantile: 0.99, fieldObjError: 0.001},
				}),
			service.NewBoolField(fieldAddProcessMetrics).
				Description("Also export the process's metrics (CPU, memory, open files), named `process_*`.").
				Advanced().
				Default(false),
			service.NewBoolField(fieldAddGoMetrics).
				Description("Also export the Go runtime's metrics (goroutines, garbage collection, heap), named `go_*`.").
				Advanced().
				Default(false),
			service.NewStringField(fieldFileOutputPath).
				Description("A file to write every metric to, in the Prometheus text format, when the service shuts down; empty writes none.").
				Advanced().
				Default(""),
		).
		Example("Latency histograms", "Timers as histograms with buckets fit for webhook replies; scrape `http://HOST:4195/metrics`.", `
http:
  address: 0.0.0.0:4195
metrics:
  prometheus:
    use_histogram_timing: true
    histogram_buckets: [ 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10 ]
`)
}

func init() {
	service.MustRegisterMetricsExporter("prometheus", exporterSpec(),
		func(conf *service.ParsedConfig, log *service.Logger) (service.MetricsExporter, error) {
			return newExporter(conf, log)
		})
}

// kind is the Prometheus type a metric name is registered as.
type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindSummary
	kindHistogram
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "summary", "histogram"}[k]
}

// family is one registered metric name.
type family struct {
	kind   kind
	labels []string              // sanitized, in the vector's order
	vec    *prometheus.MetricVec // nil when registering failed
	warned atomic.Bool
}

type exporter struct {
	log        *service.Logger
	deletions  atomic.Uint64 // series deletions so far; see seriesCache
	reg        *prometheus.Registry
	handler    http.Handler
	histogram  bool
	buckets    []float64
	objectives map[float64]float64
	filePath   string

	mu       sync.Mutex
	families map[string]*family

	closeOnce sync.Once
	closeErr  error
}

func newExporter(conf *service.ParsedConfig, log *service.Logger) (*exporter, error) {
	e := &exporter{
		log:      log,
		reg:      prometheus.NewRegistry(),
		families: map[string]*family{},
	}
	var err error
	if e.histogram, err = conf.FieldBool(fieldUseHistogramTiming); err != nil {
		return nil, err
	}
	if e.buckets, err = conf.FieldFloatList(fieldHistogramBuckets); err != nil {
		return nil, err
	}
	if len(e.buckets) == 0 {
		e.buckets = prometheus.DefBuckets
	}
	// The client panics on unordered buckets at the first observation;
	// reject them at config time instead.
	for i := 1; i < len(e.buckets); i++ {
		if e.buckets[i] <= e.buckets[i-1] {
			return nil, fmt.Errorf("%s must be in strictly increasing order, %v is not", fieldHistogramBuckets, e.buckets)
		}
	}
	objs, err := conf.FieldObjectList(fieldSummaryObjectives)
	if err != nil {
		return nil, err
	}
	e.objectives = map[float64]float64{}
	for i, oc := range objs {
		q, err := oc.FieldFloat(fieldObjQuantile)
		if err != nil {
			return nil, err
		}
		qe, err := oc.FieldFloat(fieldObjError)
		if err != nil {
			return nil, err
		}
		if q < 0 || q > 1 || qe < 0 || qe > 1 {
			return nil, fmt.Errorf("%s[%d]: quantile and error must be between 0 and 1", fieldSummaryObjectives, i)
		}
		e.objectives[q] = qe
	}
	if len(e.objectives) == 0 {
		e.objectives = map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}
	}
	if on, err := conf.FieldBool(fieldAddProcessMetrics); err != nil {
		return nil, err
	} else if on {
		if err := e.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, err
		}
	}
	if on, err := conf.FieldBool(fieldAddGoMetrics); err != nil {
		return nil, err
	} else if on {
		if err := e.reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, err
		}
	}
	if e.filePath, err = conf.FieldString(fieldFileOutputPath); err != nil {
		return nil, err
	}
	// One broken metric must not hide all the others from the scrape.
	e.handler = promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{log},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return e, nil
}

type errorLog struct{ log *service.Logger }

func (l errorLog) Println(v ...any) { l.log.Error(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

// HandlerFunc serves the metrics on the engine's HTTP server.
func (e *exporter) HandlerFunc() http.HandlerFunc {
	return e.handler.ServeHTTP
}

// lookup returns the family registered under name, registering it on first
// use, and the position in labelKeys of each of the family's labels. ok is
// false when the name is taken by another type or other labels.
func (e *exporter) lookup(name string, k kind, labelKeys []string) (f *family, order []int, ok bool) {
	name = sanitizeName(name, true)
	keys := make([]string, len(labelKeys))
	for i, l := range labelKeys {
		keys[i] = sanitizeName(l, false)
		switch {
		case k == kindSummary && keys[i] == "quantile", k == kindHistogram && keys[i] == "le":
			keys[i] = "exported_" + keys[i]
		case strings.HasPrefix(keys[i], "__"):
			// Reserved for Prometheus' own use.
			keys[i] = "_" + strings.TrimLeft(keys[i], "_")
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if f = e.families[name]; f == nil {
		f = &family{kind: k, labels: keys}
		const help = "A metric of the stream."
		var c prometheus.Collector
		switch k {
		case kindCounter:
			v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, keys)
			c, f.vec = v, v.MetricVec
		case kindGauge:
			v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, keys)
			c, f.vec = v, v.MetricVec
		case kindSummary:
			v := prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: name, Help: help, Objectives: e.objectives}, keys)
			c, f.vec = v, v.MetricVec
		case kindHistogram:
			v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: e.buckets}, keys)
			c, f.vec = v, v.MetricVec
		}
		if err := e.reg.Register(c); err != nil {
			e.log.Errorf("Metric %s is not exported: %v", name, err)
			f.vec = nil
		}
		e.families[name] = f
	}
	if f.vec == nil {
		return nil, nil, false
	}
	if f.kind != k {
		e.log.Errorf("Metric %s is already a %s, not exporting it as a %s too", name, f.kind, k)
		return nil, nil, false
	}
	// The same labels in another order are the same series.
	if len(keys) != len(f.labels) {
		e.log.Errorf("Metric %s has labels %v, not exporting it with labels %v too", name, f.labels, keys)
		return nil, nil, false
	}
	order = make([]int, len(f.labels))
	identity := true
	for i, l := range f.labels {
		j := slices.Index(keys, l)
		if j < 0 {
			e.log.Errorf("Metric %s has labels %v, not exporting it with labels %v too", name, f.labels, keys)
			return nil, nil, false
		}
		order[i] = j
		identity = identity && i == j
	}
	if identity {
		order = nil
	}
	return f, order, true
}

// metric returns the series of f with the given label values, ordered as
// the caller's label keys, or nil.
func (f *family) metric(log *service.Logger, order []int, values []string) prometheus.Metric {
	if len(values) != len(f.labels) {
		if !f.warned.Swap(true) {
			log.Errorf("Metric with labels %v was given %d label values; dropping those updates", f.labels, len(values))
		}
		return nil
	}
	vals := values
	if order != nil || !allValidUTF8(values) {
		vals = make([]string, len(values))
		for i := range vals {
			src := i
			if order != nil {
				src = order[i]
			}
			vals[i] = strings.ToValidUTF8(values[src], "\uFFFD")
		}
	}
	m, err := f.vec.GetMetricWithLabelValues(vals...)
	if err != nil {
		if !f.warned.Swap(true) {
			log.Errorf("Metric with labels %v: %v", f.labels, err)
		}
		return nil
	}
	return m
}

// NewCounterCtor implements service.MetricsExporter.
func (e *exporter) NewCounterCtor(name string, labelKeys ...string) service.MetricsExporterCounterCtor {
	f, order, ok := e.lookup(name, kindCounter, labelKeys)
	cache := e.newSeriesCache()
	build := func(values []string) service.MetricsExporterCounter {
		if ok {
			if c, isCounter := f.metric(e.log, order, values).(prometheus.Counter); isCounter {
				return counter{c}
			}
		}
		return noop{}
	}
	return func(values ...string) service.MetricsExporterCounter {
		return seriesFor(cache, values, build)
	}
}

// NewGaugeCtor implements service.MetricsExporter.
func (e *exporter) NewGaugeCtor(name string, labelKeys ...string) service.MetricsExporterGaugeCtor {
	f, order, ok := e.lookup(name, kindGauge, labelKeys)
	cache := e.newSeriesCache()
	build := func(values []string) service.MetricsExporterGauge {
		if ok {
			if g, isGauge := f.metric(e.log, order, values).(prometheus.Gauge); isGauge {
				return gauge{g}
			}
		}
		return noop{}
	}
	return func(values ...string) service.MetricsExporterGauge {
		return seriesFor(cache, values, build)
	}
}

// NewTimerCtor implements service.MetricsExporter.
func (e *exporter) NewTimerCtor(name string, labelKeys ...string) service.MetricsExporterTimerCtor {
	k, scale := kindSummary, 1.0
	if e.histogram {
		// Bucket bounds are in seconds, the conventional Prometheus unit.
		k, scale = kindHistogram, 1e-9
	}
	f, order, ok := e.lookup(name, k, labelKeys)
	cache := e.newSeriesCache()
	build := func(values []string) service.MetricsExporterTimer {
		if ok {
			if o, isObserver := f.metric(e.log, order, values).(prometheus.Observer); isObserver {
				return timer{o, scale}
			}
		}
		return noop{}
	}
	return func(values ...string) service.MetricsExporterTimer {
		return seriesFor(cache, values, build)
	}
}

// maxCachedLabels is the most label values a series cache keys on, and
// maxCachedSeries the most series it keeps; beyond either a metric looks its
// series up every time.
const (
	maxCachedLabels = 8
	maxCachedSeries = 1024
)

// seriesKey is a set of label values; n tells ("a") from ("a", "").
type seriesKey struct {
	n      int
	values [maxCachedLabels]string
}

// seriesCache keeps what a metric's constructor built for each set of label
// values: the engine asks for the series on every update, and a map lookup
// costs a fraction of the client library's hashing and checking of every
// value (and of wrapping the result). Readers take no lock: the map is
// replaced, never changed, when a series is added. Deleting series empties
// every cache.
type seriesCache struct {
	deletions *atomic.Uint64 // the exporter's count of series deletions
	mu        sync.Mutex     // held while a new map is made
	series    atomic.Pointer[cachedSeries]
}

type cachedSeries struct {
	built uint64 // the deletion count the entries were built under
	m     map[seriesKey]any
}

func (e *exporter) newSeriesCache() *seriesCache {
	return &seriesCache{deletions: &e.deletions}
}

// seriesFor returns the cached series of the label values, building and
// caching it when there is none.
func seriesFor[T any](c *seriesCache, values []string, build func([]string) T) T {
	if len(values) > maxCachedLabels {
		return build(values)
	}
	k := seriesKey{n: len(values)}
	copy(k.values[:], values)
	deletions := c.deletions.Load()
	cur := c.series.Load()
	if cur != nil && cur.built == deletions {
		if v, ok := cur.m[k]; ok {
			return v.(T)
		}
		if len(cur.m) >= maxCachedSeries {
			return build(values)
		}
	}
	series := build(values)
	c.mu.Lock()
	defer c.mu.Unlock()
	next := &cachedSeries{built: deletions, m: map[seriesKey]any{k: series}}
	if cur := c.series.Load(); cur != nil {
		switch {
		case cur.built > deletions:
			return series // a newer map is in place: leave it
		case cur.built == deletions:
			if len(cur.m) >= maxCachedSeries {
				return series
			}
			for key, v := range cur.m {
				next.m[key] = v
			}
		}
	}
	c.series.Store(next)
	return series
}

// DeleteSeriesPartialMatch implements service.MetricsExporterSeriesDeleter,
// so the series of a removed stream stop being exported.
func (e *exporter) DeleteSeriesPartialMatch(labels map[string]string) {
	match := prometheus.Labels{}
	for k, v := range labels {
		match[sanitizeName(k, false)] = v
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.families {
		if f.vec != nil {
			f.vec.DeletePartialMatch(match)
		}
	}
	// Cached series may be the deleted ones: build them anew.
	e.deletions.Add(1)
}

// Close writes the metrics to file_output_path, if set.
func (e *exporter) Close(context.Context) error {
	e.closeOnce.Do(func() {
		if e.filePath != "" {
			if err := prometheus.WriteToTextfile(e.filePath, e.reg); err != nil {
				e.closeErr = fmt.Errorf("writing metrics to %s: %w", e.filePath, err)
			}
		}
	})
	return e.closeErr
}

type counter struct{ c prometheus.Counter }

// A Prometheus counter panics when it decreases.
func (c counter) Incr(n int64) {
	if n > 0 {
		c.c.Add(float64(n))
	}
}

func (c counter) IncrFloat64(n float64) {
	if n > 0 {
		c.c.Add(n)
	}
}

type gauge struct{ g prometheus.Gauge }

func (g gauge) Set(v int64)          { g.g.Set(float64(v)) }
func (g gauge) SetFloat64(v float64) { g.g.Set(v) }

type timer struct {
	o     prometheus.Observer
	scale float64
}

func (t timer) Timing(ns int64) { t.o.Observe(float64(ns) * t.scale) }

type noop struct{}

func (noop) Incr(int64)          {}
func (noop) IncrFloat64(float64) {}
func (noop) Set(int64)           {}
func (noop) SetFloat64(float64)  {}
func (noop) Timing(int64)        {}

// sanitizeName makes s a valid Prometheus metric name (colons allowed) or
// label name: other characters become '_', and a leading digit gets a '_'
// in front.
func sanitizeName(s string, colons bool) string {
	valid := func(i int, r rune) bool {
		return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') ||
			(i > 0 && r >= '0' && r <= '9') || (colons && r == ':')
	}
	clean := s != ""
	for i, r := range s {
		if !valid(i, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		b.WriteByte('_')
	}
	for _, r := range s {
		if valid(1, r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func allValidUTF8(vs []string) bool {
	for _, v := range vs {
		if !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

var _ service.MetricsExporterSeriesDeleter = (*exporter)(nil)
