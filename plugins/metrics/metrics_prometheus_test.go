package metrics

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func newTestExporter(t *testing.T, yaml string) *exporter {
	t.Helper()
	conf, err := exporterSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newExporter(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// scrape fetches the text exposition through the exporter's handler and
// parses it the way a Prometheus server would.
func scrape(t *testing.T, h http.HandlerFunc) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	h(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape answered %d: %s", rec.Code, rec.Body)
	}
	text := rec.Body.String()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	return text, fams
}

// series returns the one series of family name whose labels include want.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("metric %s not exported; have %v", name, familyNames(fams))
	}
	var found *dto.Metric
	for _, m := range f.Metric {
		if hasLabels(m, want) {
			if found != nil {
				t.Fatalf("metric %s has several series with labels %v", name, want)
			}
			found = m
		}
	}
	if found == nil {
		t.Fatalf("metric %s has no series with labels %v: %v", name, want, f.Metric)
	}
	return found
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, lp := range m.Label {
		have[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func familyNames(fams map[string]*dto.MetricFamily) []string {
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	return names
}

func TestCounterGaugeTimerExposition(t *testing.T) {
	e := newTestExporter(t, `{}`)

	reqs := e.NewCounterCtor("webhook_requests_total", "provider", "status")
	reqs("controlshift", "200").Incr(2)
	reqs("controlshift", "200").Incr(3)
	reqs("controlshift", "401").Incr(1)
	reqs("thecity", "200").Incr(1)
	// Counters never decrease: Prometheus would panic on a negative add.
	reqs("thecity", "200").Incr(-4)
	reqs("thecity", "200").(interface{ IncrFloat64(float64) }).IncrFloat64(0.5)

	size := e.NewGaugeCtor("webhook_batch_size")
	size().Set(7)
	size().Set(-3)
	depth := e.NewGaugeCtor("queue_depth", "queue")
	depth("a").(interface{ SetFloat64(float64) }).SetFloat64(2.5)

	lat := e.NewTimerCtor("webhook_request_duration_ns", "endpoint")
	for _, ns := range []int64{1e6, 2e6, 3e6} {
		lat("/cs").Timing(ns)
	}

	_, fams := scrape(t, e.HandlerFunc())

	if f := fams["webhook_requests_total"]; f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("webhook_requests_total is %v, want a counter", f.GetType())
	}
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"provider": "controlshift", "status": "200"}, 5},
		{map[string]string{"provider": "controlshift", "status": "401"}, 1},
		{map[string]string{"provider": "thecity", "status": "200"}, 1.5},
	} {
		if got := series(t, fams, "webhook_requests_total", c.labels).GetCounter().GetValue(); got != c.want {
			t.Errorf("webhook_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}

	if got := series(t, fams, "webhook_batch_size", nil).GetGauge().GetValue(); got != -3 {
		t.Errorf("webhook_batch_size = %v, want -3 (the last value set)", got)
	}
	if got := series(t, fams, "queue_depth", map[string]string{"queue": "a"}).GetGauge().GetValue(); got != 2.5 {
		t.Errorf("queue_depth = %v, want 2.5", got)
	}

	f := fams["webhook_request_duration_ns"]
	if f.GetType() != dto.MetricType_SUMMARY {
		t.Fatalf("timer exported as %v, want a summary by default", f.GetType())
	}
	s := series(t, fams, "webhook_request_duration_ns", map[string]string{"endpoint": "/cs"}).GetSummary()
	if s.GetSampleCount() != 3 || s.GetSampleSum() != 6e6 {
		t.Errorf("summary count/sum = %d/%v, want 3/6e6 (nanoseconds kept as they are)", s.GetSampleCount(), s.GetSampleSum())
	}
	quantiles := map[float64]float64{}
	for _, q := range s.Quantile {
		quantiles[q.GetQuantile()] = q.GetValue()
	}
	if len(quantiles) != 3 || quantiles[0.5] != 2e6 {
		t.Errorf("quantiles = %v, want the 0.5/0.9/0.99 defaults with a median of 2e6", quantiles)
	}
}

func TestHistogramTiming(t *testing.T) {
	e := newTestExporter(t, `
use_histogram_timing: true
histogram_buckets: [ 0.001, 0.01, 0.1 ]
`)
	lat := e.NewTimerCtor("output_latency_ns", "path")
	lat("root.output").Timing(5e6)   // 5 ms
	lat("root.output").Timing(50e6)  // 50 ms
	lat("root.output").Timing(500e6) // 500 ms, above every bound

	_, fams := scrape(t, e.HandlerFunc())
	if got := fams["output_latency_ns"].GetType(); got != dto.MetricType_HISTOGRAM {
		t.Fatalf("timer exported as %v, want a histogram", got)
	}
	h := series(t, fams, "output_latency_ns", map[string]string{"path": "root.output"}).GetHistogram()
	if h.GetSampleCount() != 3 || math.Abs(h.GetSampleSum()-0.555) > 1e-9 {
		t.Errorf("count/sum = %d/%v, want 3/0.555 (seconds)", h.GetSampleCount(), h.GetSampleSum())
	}
	want := map[float64]uint64{0.001: 0, 0.01: 1, 0.1: 2}
	for _, b := range h.Bucket {
		if w, ok := want[b.GetUpperBound()]; ok {
			if b.GetCumulativeCount() != w {
				t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
			}
			delete(want, b.GetUpperBound())
		}
	}
	if len(want) > 0 {
		t.Errorf("buckets missing: %v", want)
	}
}

func TestHistogramDefaultBuckets(t *testing.T) {
	e := newTestExporter(t, `use_histogram_timing: true`)
	e.NewTimerCtor("t_ns")().Timing(1)
	_, fams := scrape(t, e.HandlerFunc())
	var bounds []float64
	for _, b := range series(t, fams, "t_ns", nil).GetHistogram().Bucket {
		if !math.IsInf(b.GetUpperBound(), 1) {
			bounds = append(bounds, b.GetUpperBound())
		}
	}
	if len(bounds) != len(prometheus.DefBuckets) || bounds[0] != prometheus.DefBuckets[0] {
		t.Errorf("bounds = %v, want the client defaults %v", bounds, prometheus.DefBuckets)
	}
}

func TestSummaryObjectivesConfigured(t *testing.T) {
	e := newTestExporter(t, `
summary_quantiles_objectives:
  - { quantile: 0.75, error: 0.01 }
`)
	e.NewTimerCtor("t_ns")().Timing(10)
	_, fams := scrape(t, e.HandlerFunc())
	qs := series(t, fams, "t_ns", nil).GetSummary().Quantile
	if len(qs) != 1 || qs[0].GetQuantile() != 0.75 {
		t.Errorf("quantiles = %v, want only 0.75", qs)
	}
}

func TestNamesSanitized(t *testing.T) {
	e := newTestExporter(t, `{}`)
	e.NewCounterCtor("http.requests-total", "my-label", "__reserved")("x", "y").Incr(1)
	e.NewCounterCtor("2xx_replies")().Incr(1)
	e.NewTimerCtor("odd_ns", "quantile")("q").Timing(1)

	text, fams := scrape(t, e.HandlerFunc())
	if series(t, fams, "http_requests_total", map[string]string{"my_label": "x", "_reserved": "y"}).GetCounter().GetValue() != 1 {
		t.Error("sanitized counter has the wrong value")
	}
	series(t, fams, "_2xx_replies", nil)
	series(t, fams, "odd_ns", map[string]string{"exported_quantile": "q"})
	if strings.Contains(text, "http.requests") {
		t.Errorf("unsanitized name in exposition:\n%s", text)
	}
}

func TestSanitizeName(t *testing.T) {
	for _, c := range []struct {
		in     string
		colons bool
		want   string
	}{
		{"input_received", true, "input_received"},
		{"ns:sub_total", true, "ns:sub_total"},
		{"ns:sub", false, "ns_sub"},
		{"a.b-c d", true, "a_b_c_d"},
		{"9lives", true, "_9lives"},
		{"é", false, "_"},
		{"", true, "_"},
	} {
		if got := sanitizeName(c.in, c.colons); got != c.want {
			t.Errorf("sanitizeName(%q, %v) = %q, want %q", c.in, c.colons, got, c.want)
		}
	}
}

func TestLabelOrderAndConflicts(t *testing.T) {
	e := newTestExporter(t, `{}`)
	e.NewCounterCtor("c", "a", "b")("1", "2").Incr(1)
	// Same labels in another order: same series.
	e.NewCounterCtor("c", "b", "a")("2", "1").Incr(1)
	// Other labels, another type, a wrong number of values: dropped, no panic.
	e.NewCounterCtor("c", "a")("1").Incr(10)
	e.NewGaugeCtor("c", "a", "b")("1", "2").Set(100)
	e.NewCounterCtor("c", "a", "b")("only one").Incr(10)
	// Label values must be UTF-8 in the exposition.
	e.NewCounterCtor("c", "a", "b")("\xff", "2").Incr(1)

	_, fams := scrape(t, e.HandlerFunc())
	if got := series(t, fams, "c", map[string]string{"a": "1", "b": "2"}).GetCounter().GetValue(); got != 2 {
		t.Errorf("c{a=1,b=2} = %v, want 2", got)
	}
	if got := series(t, fams, "c", map[string]string{"a": "\uFFFD"}).GetCounter().GetValue(); got != 1 {
		t.Errorf("c{a=U+FFFD} = %v, want 1", got)
	}
	if n := len(fams["c"].Metric); n != 2 {
		t.Errorf("c has %d series, want 2", n)
	}
}

func TestDeleteSeriesPartialMatch(t *testing.T) {
	e := newTestExporter(t, `{}`)
	c := e.NewCounterCtor("input_received", "stream", "path")
	c("a", "root.input").Incr(1)
	c("b", "root.input").Incr(1)
	e.DeleteSeriesPartialMatch(map[string]string{"stream": "a"})
	_, fams := scrape(t, e.HandlerFunc())
	if n := len(fams["input_received"].Metric); n != 1 {
		t.Fatalf("%d series left, want 1", n)
	}
	series(t, fams, "input_received", map[string]string{"stream": "b"})
}

// Series are cached per label values: updates through the cache add up in
// one series, and a series deleted and then updated again is exported anew
// rather than updated where nobody reads it.
func TestSeriesCache(t *testing.T) {
	e := newTestExporter(t, `{}`)
	c := e.NewCounterCtor("input_received", "stream", "path")
	tm := e.NewTimerCtor("latency_ns", "stream")
	for range 3 {
		c("a", "root.input").Incr(2)
		tm("a").Timing(1e6)
	}
	c("b", "root.input").Incr(1)
	_, fams := scrape(t, e.HandlerFunc())
	if v := series(t, fams, "input_received", map[string]string{"stream": "a", "path": "root.input"}).GetCounter().GetValue(); v != 6 {
		t.Errorf("a counted %v, want 6", v)
	}
	if n := series(t, fams, "latency_ns", map[string]string{"stream": "a"}).GetSummary().GetSampleCount(); n != 3 {
		t.Errorf("a timed %d times, want 3", n)
	}
	e.DeleteSeriesPartialMatch(map[string]string{"stream": "a"})
	c("a", "root.input").Incr(5)
	tm("a").Timing(1e6)
	_, fams = scrape(t, e.HandlerFunc())
	if v := series(t, fams, "input_received", map[string]string{"stream": "a", "path": "root.input"}).GetCounter().GetValue(); v != 5 {
		t.Errorf("a after its deletion counted %v, want 5", v)
	}
	if n := series(t, fams, "latency_ns", map[string]string{"stream": "a"}).GetSummary().GetSampleCount(); n != 1 {
		t.Errorf("a after its deletion timed %d times, want 1", n)
	}
	if v := series(t, fams, "input_received", map[string]string{"stream": "b"}).GetCounter().GetValue(); v != 1 {
		t.Errorf("b counted %v, want 1", v)
	}
}

// A call with the wrong number of label values is dropped, and caching it
// must not drop the right call whose values look the same padded out.
func TestSeriesCacheArity(t *testing.T) {
	e := newTestExporter(t, `{}`)
	c := e.NewCounterCtor("requests", "provider", "status")
	c("x").Incr(7)
	c("x", "").Incr(1)
	c("x", "").Incr(1)
	_, fams := scrape(t, e.HandlerFunc())
	if v := series(t, fams, "requests", map[string]string{"provider": "x", "status": ""}).GetCounter().GetValue(); v != 2 {
		t.Errorf("counted %v, want 2", v)
	}
}

// Past the most series a cache keeps, updates still reach their series.
func TestSeriesCacheFull(t *testing.T) {
	e := newTestExporter(t, `{}`)
	c := e.NewCounterCtor("events", "type")
	const n = maxCachedSeries + 100
	for round := range 2 {
		for i := range n {
			c(fmt.Sprint("t", i)).Incr(int64(round + 1))
		}
	}
	_, fams := scrape(t, e.HandlerFunc())
	if got := len(fams["events"].Metric); got != n {
		t.Fatalf("%d series, want %d", got, n)
	}
	for _, i := range []int{0, maxCachedSeries - 1, maxCachedSeries, n - 1} {
		if v := series(t, fams, "events", map[string]string{"type": fmt.Sprint("t", i)}).GetCounter().GetValue(); v != 3 {
			t.Errorf("series %d counted %v, want 3", i, v)
		}
	}
}

func TestRuntimeCollectors(t *testing.T) {
	_, fams := scrape(t, newTestExporter(t, `{}`).HandlerFunc())
	if _, ok := fams["go_goroutines"]; ok {
		t.Error("Go metrics exported without add_go_metrics")
	}
	_, fams = scrape(t, newTestExporter(t, `{ add_go_metrics: true, add_process_metrics: true }`).HandlerFunc())
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s not exported", name)
		}
	}
}

func TestFileOutputOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.prom")
	e := newTestExporter(t, `file_output_path: `+path)
	e.NewCounterCtor("output_sent", "label")("sink").Incr(4)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `output_sent{label="sink"} 4`) {
		t.Errorf("file lacks the counter:\n%s", b)
	}
}

func TestConfigRejected(t *testing.T) {
	for name, yaml := range map[string]string{
		"unordered buckets": `histogram_buckets: [ 0.1, 0.01 ]`,
		"quantile above 1":  `summary_quantiles_objectives: [ { quantile: 1.5, error: 0.01 } ]`,
	} {
		conf, err := exporterSpec().ParseYAML(yaml, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newExporter(conf, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkCounterIncr is what one labelled Incr through the engine's
// metrics API costs: the engine resolves the series on every call.
func BenchmarkCounterIncr(b *testing.B) {
	conf, err := exporterSpec().ParseYAML(`{}`, nil)
	if err != nil {
		b.Fatal(err)
	}
	e, err := newExporter(conf, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctor := e.NewCounterCtor("webhook_requests_total", "label", "path", "provider", "endpoint", "status")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctor("", "root.input", "controlshift", "/webhooks/controlshift", "200").Incr(1)
		}
	})
}

func BenchmarkTimerSummary(b *testing.B) {
	conf, err := exporterSpec().ParseYAML(`{}`, nil)
	if err != nil {
		b.Fatal(err)
	}
	e, err := newExporter(conf, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctor := e.NewTimerCtor("webhook_request_duration_ns", "label", "path", "provider", "endpoint")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctor("", "root.input", "controlshift", "/webhooks/controlshift").Timing(123456)
		}
	})
}
