package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	_ "github.com/hookpipe/hookpipe/plugins/controlshift"
	_ "github.com/hookpipe/hookpipe/plugins/metrics"
	_ "github.com/hookpipe/hookpipe/plugins/webhook"
)

const (
	csEndpoint = "/webhooks/controlshift"
	csPassword = "stream-test-password"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runStream starts webhook_server → controlshift_webhook → drop with the
// prometheus exporter on the engine's HTTP server, and returns the webhook
// base URL and the metrics URL.
func runStream(t *testing.T, exporterConf string) (string, string) {
	t.Helper()
	apiAddr, hookAddr := freeAddr(t), freeAddr(t)
	b := service.NewStreamBuilder()
	err := b.SetYAML(fmt.Sprintf(`
logger:
  level: none
http:
  enabled: true
  address: %s
metrics:
  prometheus: %s
input:
  webhook_server:
    address: %s
    timeout: 5s
    endpoints:
      - path: %s
        provider: controlshift
        auth:
          basic:
            username: controlshift
            passwords: [ %q ]
pipeline:
  processors:
    - controlshift_webhook: {}
output:
  drop: {}
`, apiAddr, exporterConf, hookAddr, csEndpoint, csPassword))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = stream.Run(ctx)
	}()
	t.Cleanup(func() {
		_ = stream.Stop(context.Background())
		cancel()
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range []string{apiAddr, hookAddr} {
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not listening: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return "http://" + hookAddr, "http://" + apiAddr + "/metrics"
}

func post(t *testing.T, url, body string, withAuth bool) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if withAuth {
		req.SetBasicAuth("controlshift", csPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type expectation struct {
	name   string
	labels map[string]string
	want   float64
}

// value is the counter or gauge value, or the sample count of a summary or
// histogram, of the one series of name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, error) {
	f, ok := fams[name]
	if !ok {
		return 0, fmt.Errorf("%s is not exported", name)
	}
	var found []*dto.Metric
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			if hv, ok := have[k]; !ok || hv != v {
				match = false
			}
		}
		if match {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%s has %d series with labels %v", name, len(found), want)
	}
	m := found[0]
	switch f.GetType() {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), nil
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), nil
	case dto.MetricType_SUMMARY:
		return float64(m.GetSummary().GetSampleCount()), nil
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount()), nil
	}
	return 0, fmt.Errorf("%s has type %v", name, f.GetType())
}

func scrape(url string) (string, map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), nil, fmt.Errorf("GET %s answered %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	return string(b), fams, err
}

// awaitMetrics scrapes until every expectation holds: the engine updates
// some counters (output_sent) just after the acknowledgement that released
// the HTTP reply.
func awaitMetrics(t *testing.T, url string, exps []expectation) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		text, fams, err := scrape(url)
		var problems []string
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			for _, e := range exps {
				got, err := value(fams, e.name, e.labels)
				if err != nil {
					problems = append(problems, err.Error())
				} else if got != e.want {
					problems = append(problems, fmt.Sprintf("%s%v = %v, want %v", e.name, e.labels, got, e.want))
				}
			}
		}
		if len(problems) == 0 {
			return fams
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never matched:\n  %s\nexposition:\n%s", strings.Join(problems, "\n  "), text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStreamExportsWebhookMetrics(t *testing.T) {
	for name, c := range map[string]struct {
		conf     string
		duration dto.MetricType
	}{
		"summary":   {`{}`, dto.MetricType_SUMMARY},
		"histogram": {`{ use_histogram_timing: true }`, dto.MetricType_HISTOGRAM},
	} {
		t.Run(name, func(t *testing.T) {
			base, metricsURL := runStream(t, c.conf)
			url := base + csEndpoint

			if got := post(t, url, `{"type":"petition.launched","data":{"slug":"save-the-park","url":"https://example.org/p"},"jid":"j1"}`, true); got != http.StatusOK {
				t.Fatalf("valid delivery answered %d", got)
			}
			if got := post(t, url, `{"type":"petition.launched","data":{"slug":"x","url":"u"},"jid":"j2"}`, false); got != http.StatusUnauthorized {
				t.Fatalf("unauthenticated delivery answered %d", got)
			}
			// Flagged, not dropped: written, answered 200, counted as a dead letter.
			if got := post(t, url, `{"type":"petition.exploded","data":{},"jid":"j3"}`, true); got != http.StatusOK {
				t.Fatalf("unknown type answered %d", got)
			}
			if got := post(t, base+"/secret/path/1234", `{}`, true); got != http.StatusNotFound {
				t.Fatalf("unknown path answered %d", got)
			}

			cs := map[string]string{"provider": "controlshift", "endpoint": csEndpoint}
			with := func(extra ...string) map[string]string {
				m := map[string]string{}
				for k, v := range cs {
					m[k] = v
				}
				for i := 0; i+1 < len(extra); i += 2 {
					m[extra[i]] = extra[i+1]
				}
				return m
			}
			fams := awaitMetrics(t, metricsURL, []expectation{
				{"webhook_requests_total", with("status", "200"), 2},
				{"webhook_requests_total", with("status", "401"), 1},
				{"webhook_requests_total", map[string]string{"provider": "", "endpoint": "unknown", "status": "404"}, 1},
				{"webhook_auth_failures_total", cs, 1},
				{"webhook_request_duration_ns", cs, 3},
				{"webhook_events_total", map[string]string{"provider": "controlshift", "type": "petition.launched", "status": "valid"}, 1},
				{"webhook_events_total", map[string]string{"provider": "controlshift", "type": "unknown", "status": "unknown_type"}, 1},
				{"webhook_batches_total", nil, 2},
				{"webhook_batch_messages_total", nil, 2},
				{"webhook_batch_size", nil, 1},
				// Sink batch sizes come from the engine's own output counters.
				{"output_sent", map[string]string{"path": "root.output"}, 2},
				{"output_batch_sent", map[string]string{"path": "root.output"}, 2},
			})
			if got := fams["webhook_request_duration_ns"].GetType(); got != c.duration {
				t.Errorf("webhook_request_duration_ns is a %v, want a %v", got, c.duration)
			}
			for _, m := range fams["webhook_requests_total"].Metric {
				for _, lp := range m.Label {
					if strings.Contains(lp.GetValue(), "secret") {
						t.Errorf("request path leaked into a label: %v", m.Label)
					}
				}
			}
		})
	}
}
