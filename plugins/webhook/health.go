package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/health"
)

// Health checks on the webhook listener itself: the address a load balancer
// already reaches.
//
//   - liveness: 200 while the listener serves; says nothing about sinks, so
//     an orchestrator does not restart a healthy process for a down database.
//   - readiness: 503 while this process should get no new deliveries: it is
//     shutting down (from SIGTERM on), its pipeline has stopped taking
//     requests, or a sink probe (registered by hookpipe's outputs in the same
//     stream) fails.

const (
	fieldHealth              = "health"
	fieldHealthLivenessPath  = "liveness_path"
	fieldHealthReadinessPath = "readiness_path"
	fieldHealthProbeInterval = "probe_interval"
	fieldHealthProbeTimeout  = "probe_timeout"
	fieldHealthStallAfter    = "stall_after"
	fieldHealthDrainOnSignal = "drain_on_signal"
)

func healthFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewObjectField(fieldHealth,
			service.NewStringField(fieldHealthLivenessPath).Description("Answers `GET` with 200 while the listener serves (liveness). Empty turns it off.").Default("/healthz"),
			service.NewStringField(fieldHealthReadinessPath).Description("Answers `GET` with 200 when this process should receive deliveries and 503 otherwise (readiness): from the moment shutdown begins (SIGTERM), while the pipeline does not take queued requests for `stall_after`, and while a sink probe fails. Empty turns it off.").Default("/readyz"),
			service.NewDurationField(fieldHealthProbeInterval).Description("How often the sink probes run. hookpipe's `sql_insert`/`sql_raw`, `aws_s3` and `kafka_franz` outputs in the same stream each add one: it fails until the output has connected and, for Postgres, S3 and Kafka, while the server does not answer.").Default("2s"),
			service.NewDurationField(fieldHealthProbeTimeout).Description("How long one sink probe may take before it counts as failed.").Default("1s"),
			service.NewDurationField(fieldHealthStallAfter).Description("Readiness fails when a request has waited this long for the pipeline to take it (the pipeline is stuck, for instance behind a sink that cannot be written).").Default("2s"),
			service.NewBoolField(fieldHealthDrainOnSignal).Description("On SIGTERM or SIGINT, fail readiness at once and close each connection after its reply, while requests go on being served and written until the engine stops the stream (after the config's top-level `shutdown_delay`). Set `shutdown_delay` longer than your load balancer needs to notice (its probe interval times its failure threshold) and a rolling restart refuses nothing. Turn this off only when embedding the input in a program that does not handle these signals itself: while the input listens for them, they no longer end such a program.").Default(true),
		).Description("Liveness and readiness checks served on the webhook listener, for load balancers and orchestrators. They need no authentication, client certificate or allowed address, and reveal nothing but a status and its general reason (which sink failed is logged, not served).").Advanced(),
	}
}

type healthConf struct {
	livePath, readyPath string
	probeInterval       time.Duration
	probeTimeout        time.Duration
	stallAfter          time.Duration
	drainOnSignal       bool
}

func healthFromConfig(conf *service.ParsedConfig) (healthConf, error) {
	c := conf.Namespace(fieldHealth)
	var h healthConf
	var err error
	if h.livePath, err = c.FieldString(fieldHealthLivenessPath); err != nil {
		return h, err
	}
	if h.readyPath, err = c.FieldString(fieldHealthReadinessPath); err != nil {
		return h, err
	}
	for _, p := range []string{h.livePath, h.readyPath} {
		if p != "" && p[0] != '/' {
			return h, fmt.Errorf("health path %q must start with /", p)
		}
	}
	if h.livePath != "" && h.livePath == h.readyPath {
		return h, errors.New("health: liveness_path and readiness_path are the same")
	}
	if h.probeInterval, err = c.FieldDuration(fieldHealthProbeInterval); err != nil {
		return h, err
	}
	if h.probeTimeout, err = c.FieldDuration(fieldHealthProbeTimeout); err != nil {
		return h, err
	}
	if h.stallAfter, err = c.FieldDuration(fieldHealthStallAfter); err != nil {
		return h, err
	}
	if h.probeInterval <= 0 || h.probeTimeout <= 0 || h.stallAfter <= 0 {
		return h, errors.New("health: probe_interval, probe_timeout and stall_after must be positive")
	}
	if h.drainOnSignal, err = c.FieldBool(fieldHealthDrainOnSignal); err != nil {
		return h, err
	}
	return h, nil
}

// readiness holds what the readiness check answers from.
type readiness struct {
	conf     healthConf
	registry *health.Registry
	log      *service.Logger

	// draining is set from the first SIGTERM/SIGINT or the start of shutdown.
	draining atomic.Bool
	// sinkErr holds the probe failures of the last round ("" when all passed
	// or there is no probe); sinksKnown is set once a round completed.
	mu         sync.Mutex
	sinkErr    []string
	sinksKnown bool

	// queued counts requests waiting to be taken by the pipeline;
	// lastTake is when the pipeline last took one or asked for more.
	queued   atomic.Int64
	lastTake atomic.Int64
	// waiting is set while the pipeline waits for a request: queued
	// requests are about to be taken, not stuck.
	waiting atomic.Bool

	stop    chan struct{}
	stopped sync.WaitGroup
}

func newReadiness(conf healthConf, mgr *service.Resources) *readiness {
	r := &readiness{conf: conf, registry: health.For(mgr), log: mgr.Logger(), stop: make(chan struct{})}
	r.lastTake.Store(time.Now().UnixNano())
	return r
}

// start runs the sink probes and, if configured, watches for the signals
// that begin a shutdown.
func (r *readiness) start() {
	if r.conf.readyPath != "" {
		r.stopped.Add(1)
		go r.probeLoop()
	}
	if r.conf.drainOnSignal {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
		r.stopped.Add(1)
		go func() {
			defer r.stopped.Done()
			defer signal.Stop(sigs)
			select {
			case sig := <-sigs:
				r.log.Infof("Received %v: readiness now fails; deliveries are still served until the stream stops", sig)
				r.drain()
			case <-r.stop:
			}
		}()
	}
}

// drain fails readiness from now on.
func (r *readiness) drain() { r.draining.Store(true) }

func (r *readiness) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.stopped.Wait()
}

func (r *readiness) probeLoop() {
	defer r.stopped.Done()
	t := time.NewTicker(r.conf.probeInterval)
	defer t.Stop()
	for {
		r.probeOnce()
		select {
		case <-t.C:
		case <-r.stop:
			return
		}
	}
}

// probeOnce runs every registered probe concurrently and records the
// failures, logging each change of a sink's state once.
func (r *readiness) probeOnce() {
	probes := r.registry.Probes()
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), r.conf.probeTimeout)
			defer cancel()
			errs[i] = p.Check(ctx)
		})
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, probes[i].Name)
		}
	}
	r.mu.Lock()
	was := map[string]bool{}
	for _, n := range r.sinkErr {
		was[n] = true
	}
	r.sinkErr, r.sinksKnown = failed, true
	r.mu.Unlock()
	for i, err := range errs {
		switch {
		case err != nil && !was[probes[i].Name]:
			r.log.Warnf("Sink probe failed, readiness fails until it passes: %s: %v", probes[i].Name, err)
		case err == nil && was[probes[i].Name]:
			r.log.Infof("Sink probe passes again: %s", probes[i].Name)
		}
	}
}

// took records that the pipeline took requests or asked for more.
func (r *readiness) took() { r.lastTake.Store(time.Now().UnixNano()) }

// reasons lists why this process is not ready; empty when it is.
func (r *readiness) reasons() []string {
	var out []string
	if r.draining.Load() {
		out = append(out, "shutting down")
	}
	if r.queued.Load() > 0 && !r.waiting.Load() && time.Since(time.Unix(0, r.lastTake.Load())) > r.conf.stallAfter {
		out = append(out, "pipeline not taking requests")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.sinksKnown && len(r.registry.Probes()) > 0 {
		out = append(out, "sinks not probed yet")
	}
	// Which sink is named only in the log: the listener is public.
	if len(r.sinkErr) > 0 {
		out = append(out, "sink unreachable")
	}
	return out
}

type healthReply struct {
	Status  string   `json:"status"`
	Reasons []string `json:"reasons,omitempty"`
}

// serveHealth answers the health paths; it reports whether path was one.
func (w *webhookServer) serveHealth(rw http.ResponseWriter, req *http.Request) bool {
	r := w.ready
	if r == nil || (req.URL.Path != r.conf.livePath && req.URL.Path != r.conf.readyPath) || req.URL.Path == "" {
		return false
	}
	h := rw.Header()
	h.Set("Cache-Control", "no-store")
	if r.draining.Load() {
		h.Set("Connection", "close")
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		rw.WriteHeader(http.StatusMethodNotAllowed)
		return true
	}
	status, reply := http.StatusOK, healthReply{Status: "ok"}
	if req.URL.Path == r.conf.readyPath {
		if reasons := r.reasons(); len(reasons) > 0 {
			status, reply = http.StatusServiceUnavailable, healthReply{Status: "not ready", Reasons: reasons}
		} else {
			reply.Status = "ready"
		}
	}
	b, _ := json.Marshal(reply)
	h.Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	if req.Method == http.MethodGet {
		_, _ = rw.Write(append(b, '\n'))
	}
	return true
}
