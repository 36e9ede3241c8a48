package main

import (
	"context"
	"crypto/subtle"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	for _, tc := range []struct {
		n    int
		q    float64
		want time.Duration
	}{
		{100, 0.50, 50},
		{100, 0.99, 99},
		{100, 0.999, 100},
		{1000, 0.999, 999},
		{1000, 0.99, 990},
		{1, 0.5, 1},
		{3, 0.5, 2},
	} {
		r := &phaseResult{}
		for i := 1; i <= tc.n; i++ {
			r.latencies = append(r.latencies, time.Duration(i))
		}
		if got := r.percentile(tc.q); got != tc.want {
			t.Errorf("p%g of 1..%d = %d, want %d", tc.q*100, tc.n, got, tc.want)
		}
	}
	if got := (&phaseResult{}).percentile(0.5); got != 0 {
		t.Errorf("percentile of nothing = %d", got)
	}
}

// checkingServer answers 200 only to requests that carry the run's
// credentials on the right path, and 401 otherwise.
func checkingServer(t *testing.T, cred credentials) (*httptest.Server, *atomic.Int64) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if _, err := io.ReadAll(r.Body); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ok := false
		switch r.URL.Path {
		case "/webhooks/controlshift":
			u, p, has := r.BasicAuth()
			ok = has && u == cred.csUser && subtle.ConstantTimeCompare([]byte(p), []byte(cred.csPassword)) == 1
		case "/webhooks/thecity":
			ok = r.Header.Get("X-City-Webhook-Signature") == cred.citySecret
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &served
}

func TestClosedLoopSendsExactlyNAuthenticatedRequests(t *testing.T) {
	cred := newCredentials()
	mix, err := newBodyMix(cred, false)
	if err != nil {
		t.Fatal(err)
	}
	srv, served := checkingServer(t, cred)
	var seq atomic.Uint64
	g := newGenerator(mix, &seq, srv.URL, hookpipePaths)
	defer g.close()
	res := g.run(context.Background(), loadSpec{concurrency: 4, requests: 500})
	if res.sent != 500 || res.ok != 500 || served.Load() != 500 {
		t.Fatalf("sent %d, ok %d, served %d; errors %s", res.sent, res.ok, served.Load(), res.errorSummary())
	}
	if len(res.latencies) != 500 || res.errorCount() != 0 {
		t.Fatalf("%d latencies, %d errors", len(res.latencies), res.errorCount())
	}
	if seq.Load() != 500 || g.sent.Load() != 500 || g.ok.Load() != 500 {
		t.Fatalf("counters: seq %d, sent %d, ok %d", seq.Load(), g.sent.Load(), g.ok.Load())
	}
}

func TestErrorsAreCountedByStatus(t *testing.T) {
	mix, err := newBodyMix(newCredentials(), false)
	if err != nil {
		t.Fatal(err)
	}
	// Other credentials than the ones the mix sends.
	srv, _ := checkingServer(t, newCredentials())
	var seq atomic.Uint64
	g := newGenerator(mix, &seq, srv.URL, hookpipePaths)
	defer g.close()
	res := g.run(context.Background(), loadSpec{concurrency: 2, requests: 50})
	if res.ok != 0 || res.statuses[http.StatusUnauthorized] != 50 || res.errorCount() != 50 {
		t.Fatalf("ok %d, statuses %v", res.ok, res.statuses)
	}
	if got := res.errorSummary(); got != "401×50" {
		t.Errorf("summary %q", got)
	}
}

func TestOpenLoopSendsAtTheRate(t *testing.T) {
	cred := newCredentials()
	mix, err := newBodyMix(cred, false)
	if err != nil {
		t.Fatal(err)
	}
	srv, served := checkingServer(t, cred)
	var seq atomic.Uint64
	g := newGenerator(mix, &seq, srv.URL, hookpipePaths)
	defer g.close()
	// 100 requests due over 0.5 s: the phase cannot end before the last
	// one is due, whatever the speed of the server.
	res := g.run(context.Background(), loadSpec{concurrency: 4, requests: 100, rate: 200})
	if res.sent != 100 || res.ok != 100 || served.Load() != 100 {
		t.Fatalf("sent %d, ok %d, served %d; errors %s", res.sent, res.ok, served.Load(), res.errorSummary())
	}
	if res.elapsed < 99*5*time.Millisecond {
		t.Errorf("100 requests at 200/s took %s: the schedule was not kept", res.elapsed)
	}
}
