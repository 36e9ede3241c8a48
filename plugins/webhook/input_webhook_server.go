// Package webhook provides the webhook_server input: one HTTP listener that
// receives provider webhooks on several endpoints, authenticates them on the
// raw bytes and answers each request only once the pipeline has written its
// message.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/auth"
	"github.com/hookpipe/hookpipe/plugins/event"
	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

const (
	fieldAddress           = "address"
	fieldEndpoints         = "endpoints"
	fieldEPPath            = "path"
	fieldEPProvider        = "provider"
	fieldEPSource          = "source"
	fieldEPLenient         = "lenient_json"
	fieldEPAuth            = "auth"
	fieldMaxBodyBytes      = "max_body_bytes"
	fieldTimeout           = "timeout"
	fieldReadTimeout       = "read_timeout"
	fieldReadHeaderTO      = "read_header_timeout"
	fieldIdleTimeout       = "idle_timeout"
	fieldMaxInFlight       = "max_in_flight"
	fieldMaxBatchSize      = "max_batch_size"
	fieldBatchPeriod       = "batch_period"
	fieldMaxPendingBatches = "max_pending_batches"
	fieldMaxPendingWait    = "max_pending_wait"
	fieldContentTypes      = "allowed_content_types"
	fieldMetadataHeaders   = "metadata_headers"
	fieldRateLimit         = "rate_limit"
	fieldShutdownDeadline  = "shutdown_timeout"
)

// Metadata keys set on every message.
const (
	MetaProvider   = "webhook_provider"
	MetaEndpoint   = "webhook_endpoint"
	MetaSource     = "webhook_source"
	MetaRemoteAddr = "webhook_remote_addr"
	MetaReceivedAt = "webhook_received_at"
	MetaRequestID  = "webhook_request_id"
)

func inputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Network").
		Summary("Receives provider webhooks (ControlShift Labs, The City, ...) on one HTTP listener, authenticates them on the raw body and answers each request only after the pipeline has written its message.").
		Description(`
Each endpoint is a path on the listener with its provider name and its authentication. A request goes through these
checks in order, and the first that fails answers with a short JSON error body:

| check | status |
| --- | --- |
| unknown path | 404 |
| client address not in the endpoint's `+"`allowed_ips`"+` | 403 |
| no valid client certificate on an endpoint with `+"`require_client_cert`"+` (or not one of `+"`client_cert_names`"+`) | 401 (403) |
| method other than POST (and OPTIONS, the handshake, on a `+"`cloudevents`"+` endpoint) | 405 |
| `+"`Content-Type`"+` not in `+"`allowed_content_types`"+` | 415 |
| body larger than `+"`max_body_bytes`"+` (also when chunked) | 413 |
| body not received within `+"`read_timeout`"+` | 408 |
| authentication failed or missing | 401 |
| body not valid UTF-8 or not a JSON object | 400 |
| over `+"`max_in_flight`"+` concurrent requests or over the rate limit | 503 / 429, with `+"`Retry-After`"+` |
| shutting down, and the pipeline will not take the request | 503, with `+"`Retry-After`"+` |

A request that passes becomes one message whose content is the raw body, exactly as received. The reply waits for the
pipeline: **200 means the output acknowledged the message** (it was written); a nack, or no acknowledgement within
`+"`timeout`"+`, answers 503 so that the provider's own retry brings the event back. Concurrent requests are gathered into
one batch (up to `+"`max_batch_size`"+`), and each is answered from its own message's outcome, so one failed write does not
fail its neighbours.

### Metadata

- `+"`webhook_provider`"+`: the endpoint's provider
- `+"`webhook_endpoint`"+`: the endpoint's path
- `+"`webhook_source`"+`: the endpoint's `+"`source`"+` (CloudEvents source), its path by default
- `+"`webhook_remote_addr`"+`: the peer address
- `+"`webhook_received_at`"+`: receive time, RFC 3339 UTC with nanoseconds
- `+"`webhook_request_id`"+`: a random id, also returned in the `+"`X-Request-Id`"+` response header
- `+"`webhook_client_ip`"+`: the client's address (the peer, or read from `+"`X-Forwarded-For`"+` through `+"`trusted_proxies`"+`)
- `+"`webhook_client_cert_subject`"+`: the subject of the verified client certificate, when one was presented
- on `+"`cloudevents`"+` endpoints, each `+"`ce-*`"+` header and `+"`content-type`"+`, under their lower-case names
- each header named in `+"`metadata_headers`"+`, under its lower-case name (control characters removed)
`).
		Fields(
			service.NewStringField(fieldAddress).Description("The address to listen on.").Default("0.0.0.0:8080"),
			service.NewObjectListField(fieldEndpoints, endpointFields()...).Description("The endpoints served on this listener."),
			service.NewIntField(fieldMaxBodyBytes).Description("The largest body accepted; larger ones answer 413.").Default(1<<20),
			service.NewDurationField(fieldTimeout).Description("How long a request waits for its message to be acknowledged before it answers 503.").Default("10s"),
			service.NewDurationField(fieldReadTimeout).Description("How long reading a whole request may take (slow senders answer 408).").Default("10s").Advanced(),
			service.NewDurationField(fieldReadHeaderTO).Description("How long reading the request headers may take.").Default("5s").Advanced(),
			service.NewDurationField(fieldIdleTimeout).Description("How long an idle keep-alive connection is kept.").Default("60s").Advanced(),
			service.NewIntField(fieldMaxInFlight).Description("The most requests processed at once; more answer 503 with `Retry-After` at once instead of piling up.").Default(1024),
			service.NewIntField(fieldMaxBatchSize).Description("The most concurrent requests gathered into one message batch.").Default(256).Advanced(),
			service.NewDurationField(fieldBatchPeriod).Description("How long to wait for more requests before a batch is released. The default, 0s, releases at once whatever has arrived, so batching costs no latency.").Default("0s").Advanced(),
			service.NewIntField(fieldMaxPendingBatches).Description("The most batches handed to the pipeline and not yet acknowledged. While that many are pending, arriving requests wait and go into the next batch together, so a sink that writes each batch as it comes (`sql_insert`, `kafka_franz`) gets fewer, larger writes: one transaction for many webhooks instead of one each, which is most of what a database spends per row. A batch waits for a free slot at most `max_pending_wait`, then goes anyway. 0 sets no limit; leave it at 0 when the output gathers batches itself (a `batching` policy): it acknowledges nothing until its batch is full or its period ends, so every batch would wait the whole `max_pending_wait`.").Default(0).Advanced(),
			service.NewDurationField(fieldMaxPendingWait).Description("How long a batch waits for one of the `max_pending_batches` slots before it is handed over beyond the limit. A sink that answers slower than this, or an output that holds acknowledgements back, then costs this much latency per batch instead of stopping the stream (a warning is logged the first time).").Default("50ms").Advanced(),
			service.NewStringListField(fieldContentTypes).Description("Accepted media types, without parameters (a request's own parameters such as `charset` are ignored); `+json` suffixes of these are accepted too. A request without `Content-Type` is accepted.").Default([]string{"application/json"}).Advanced(),
			service.NewStringListField(fieldMetadataHeaders).Description("Request headers copied into metadata under their lower-case names. Do not list headers that carry secrets when the metadata reaches a sink.").Default([]string{"User-Agent"}),
			service.NewStringField(fieldRateLimit).Description("An optional `rate_limit` resource; requests over it answer 429 with `Retry-After`.").Default("").Advanced(),
			service.NewDurationField(fieldShutdownDeadline).Description("How long to wait for in-flight requests at shutdown.").Default("10s").Advanced(),
		).
		Fields(archiveFields()...).
		Fields(transportFields()...).
		Fields(healthFields()...).
		Example("ControlShift and The City on one listener", `Both providers' endpoints on port 8080, secrets from environment variables.`, `
input:
  webhook_server:
    address: 0.0.0.0:8080
    endpoints:
      - path: /webhooks/controlshift
        provider: controlshift
        auth:
          basic:
            username: controlshift
            passwords: [ "${CONTROLSHIFT_PASSWORD}", "${CONTROLSHIFT_PASSWORD_PREVIOUS:}" ]
      - path: /webhooks/thecity
        provider: thecity
        lenient_json: true
        auth:
          city_signature:
            mode: shared
            secrets: [ "${THECITY_SECRET}", "${THECITY_SECRET_PREVIOUS:}" ]
`)
}

func endpointFields() []*service.ConfigField {
	fields := []*service.ConfigField{
		service.NewStringField(fieldEPPath).Description("The path this endpoint is served on, e.g. `/webhooks/thecity`."),
		service.NewStringField(fieldEPProvider).Description("The provider name stored in `webhook_provider`, e.g. `controlshift` or `thecity`."),
		service.NewStringField(fieldEPSource).Description("The CloudEvents `source` of this endpoint's events. Defaults to the path.").Default(""),
		service.NewBoolField(fieldEPLenient).Description("Accept the non-strict JSON found in The City's documented examples (`nil`, trailing commas, a missing comma between members). The message keeps the raw bytes; the provider processor reads them leniently too.").Default(false),
		auth.ConfigField(fieldEPAuth),
	}
	fields = append(fields, endpointTransportFields()...)
	return append(fields, cloudEventsField())
}

func init() {
	err := service.RegisterBatchInput("webhook_server", inputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
		return newWebhookServer(conf, mgr)
	})
	if err != nil {
		panic(err)
	}
}

type endpoint struct {
	path        string
	provider    string
	source      string
	lenient     bool
	verifier    auth.Verifier
	tokenInPath bool
	// secretHeaders are the canonical names of headers that carry this
	// endpoint's secrets: never archived.
	secretHeaders map[string]bool

	allowedIPs  []netip.Prefix
	requireCert bool
	certNames   []string
	ce          *ceEndpoint // nil unless the endpoint takes CloudEvents
}

// request states: a queued request is either taken into a batch by ReadBatch
// or abandoned by its handler (timeout, shutdown), never both, so a request
// answered 503 before it was taken is guaranteed not to be written.
const (
	stateQueued int32 = iota
	stateTaken
	stateAbandoned
)

type pendingRequest struct {
	msg *service.Message
	// archiveHeaders are the headers kept in the request's archive record.
	archiveHeaders map[string]string
	state          atomic.Int32
	done           chan error // buffered: an ack never blocks on a gone handler
}

type webhookServer struct {
	log *service.Logger
	mgr *service.Resources

	address     string
	exact       map[string]*endpoint
	prefixed    []*endpoint
	maxBody     int64
	timeout     time.Duration
	maxBatch    int
	batchPeriod time.Duration
	// batchSlots holds a token for each batch handed to the pipeline and
	// not yet acknowledged; nil when max_pending_batches sets no limit.
	batchSlots   chan struct{}
	pendingWait  time.Duration
	overLimitLog sync.Once
	contentTypes []string
	metaHeaders  []metaHeader
	rateLimit    string
	shutdownWait time.Duration
	arch         *archiver // nil without an archive
	tlsConf      *tls.Config
	trusted      []netip.Prefix
	ready        *readiness

	slots   chan struct{}
	pending chan *pendingRequest
	closing chan struct{}
	closeMu sync.Once
	// stopping is closed when the engine stops reading (shutdown began):
	// requests it will never take are answered 503 at once.
	stopping chan struct{}
	stopMu   sync.Once
	watchMu  sync.Once

	server   *http.Server
	listener net.Listener
	idPrefix string
	idSeq    atomic.Uint64
	served   chan struct{}

	mRequests, mAuthFailures, mBatches, mBatchMessages *service.MetricCounter
	mDuration                                          *service.MetricTimer
	mBatchSize                                         *service.MetricGauge
}

type metaHeader struct{ header, key string }

func newWebhookServer(conf *service.ParsedConfig, mgr *service.Resources) (*webhookServer, error) {
	w := &webhookServer{log: mgr.Logger(), mgr: mgr, exact: map[string]*endpoint{}, closing: make(chan struct{}), stopping: make(chan struct{}), served: make(chan struct{})}
	var err error
	if w.address, err = conf.FieldString(fieldAddress); err != nil {
		return nil, err
	}
	epConfs, err := conf.FieldObjectList(fieldEndpoints)
	if err != nil {
		return nil, err
	}
	if len(epConfs) == 0 {
		return nil, errors.New("webhook_server: at least one endpoint is required")
	}
	for i, ec := range epConfs {
		ep, err := endpointFromConfig(ec)
		if err != nil {
			return nil, fmt.Errorf("endpoints[%d]: %w", i, err)
		}
		if _, dup := w.exact[ep.path]; dup {
			return nil, fmt.Errorf("endpoints[%d]: path %s is used twice", i, ep.path)
		}
		w.exact[ep.path] = ep
		if ep.tokenInPath {
			w.prefixed = append(w.prefixed, ep)
		}
	}
	if err := w.transportFromConfig(conf); err != nil {
		return nil, err
	}
	hc, err := healthFromConfig(conf)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{hc.livePath, hc.readyPath} {
		if ep, _ := w.route(p); p != "" && ep != nil {
			return nil, fmt.Errorf("health path %s is served by endpoint %s", p, ep.path)
		}
	}
	w.ready = newReadiness(hc, mgr)
	maxBody, err := conf.FieldInt(fieldMaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if maxBody <= 0 {
		return nil, errors.New("max_body_bytes must be positive")
	}
	w.maxBody = int64(maxBody)
	if w.timeout, err = conf.FieldDuration(fieldTimeout); err != nil {
		return nil, err
	}
	inFlight, err := conf.FieldInt(fieldMaxInFlight)
	if err != nil {
		return nil, err
	}
	if inFlight <= 0 {
		return nil, errors.New("max_in_flight must be positive")
	}
	if w.maxBatch, err = conf.FieldInt(fieldMaxBatchSize); err != nil {
		return nil, err
	}
	if w.maxBatch <= 0 {
		return nil, errors.New("max_batch_size must be positive")
	}
	if w.batchPeriod, err = conf.FieldDuration(fieldBatchPeriod); err != nil {
		return nil, err
	}
	maxPending, err := conf.FieldInt(fieldMaxPendingBatches)
	if err != nil {
		return nil, err
	}
	if maxPending < 0 {
		return nil, errors.New("max_pending_batches must not be negative")
	}
	if maxPending > 0 {
		w.batchSlots = make(chan struct{}, maxPending)
	}
	if w.pendingWait, err = conf.FieldDuration(fieldMaxPendingWait); err != nil {
		return nil, err
	}
	if w.pendingWait <= 0 {
		return nil, errors.New("max_pending_wait must be positive")
	}
	ct, err := conf.FieldStringList(fieldContentTypes)
	if err != nil {
		return nil, err
	}
	for _, c := range ct {
		c = strings.ToLower(strings.TrimSpace(c))
		// A bare type/subtype, so a request's header equal to it is one of
		// the allowed types without parsing.
		mt, params, err := mime.ParseMediaType(c)
		if typ, sub, _ := strings.Cut(mt, "/"); err != nil || len(params) > 0 || mt != c || typ == "" || sub == "" {
			return nil, fmt.Errorf("%s: %q is not a media type without parameters (like application/json)", fieldContentTypes, c)
		}
		w.contentTypes = append(w.contentTypes, c)
	}
	hs, err := conf.FieldStringList(fieldMetadataHeaders)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		w.metaHeaders = append(w.metaHeaders, metaHeader{header: http.CanonicalHeaderKey(h), key: strings.ToLower(h)})
	}
	if w.rateLimit, err = conf.FieldString(fieldRateLimit); err != nil {
		return nil, err
	}
	if w.rateLimit != "" && !mgr.HasRateLimit(w.rateLimit) {
		return nil, fmt.Errorf("rate_limit resource %q is not defined", w.rateLimit)
	}
	if w.shutdownWait, err = conf.FieldDuration(fieldShutdownDeadline); err != nil {
		return nil, err
	}
	if w.arch, err = newArchiver(conf, mgr, w.timeout); err != nil {
		return nil, err
	}
	readTO, err := conf.FieldDuration(fieldReadTimeout)
	if err != nil {
		return nil, err
	}
	headerTO, err := conf.FieldDuration(fieldReadHeaderTO)
	if err != nil {
		return nil, err
	}
	idleTO, err := conf.FieldDuration(fieldIdleTimeout)
	if err != nil {
		return nil, err
	}

	m := mgr.Metrics()
	w.mRequests = m.NewCounter("webhook_requests_total", "provider", "endpoint", "status")
	w.mAuthFailures = m.NewCounter("webhook_auth_failures_total", "provider", "endpoint")
	w.mDuration = m.NewTimer("webhook_request_duration_ns", "provider", "endpoint")
	w.mBatchSize = m.NewGauge("webhook_batch_size")
	w.mBatches = m.NewCounter("webhook_batches_total")
	w.mBatchMessages = m.NewCounter("webhook_batch_messages_total")

	w.slots = make(chan struct{}, inFlight)
	w.pending = make(chan *pendingRequest, inFlight)
	var seed [6]byte
	_, _ = rand.Read(seed[:])
	w.idPrefix = hex.EncodeToString(seed[:])
	w.server = &http.Server{
		Handler:           w,
		ReadTimeout:       readTO,
		ReadHeaderTimeout: headerTO,
		IdleTimeout:       idleTO,
		MaxHeaderBytes:    64 << 10,
		// The write deadline must outlast the wait for an acknowledgement.
		WriteTimeout: readTO + w.timeout + 5*time.Second,
		// Failed TLS handshakes and the like, from scanners as much as
		// senders: the engine's log at debug level, not stderr.
		ErrorLog: log.New(debugWriter{w.log}, "", 0),
	}
	return w, nil
}

func endpointFromConfig(ec *service.ParsedConfig) (*endpoint, error) {
	ep := &endpoint{}
	var err error
	if ep.path, err = ec.FieldString(fieldEPPath); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(ep.path, "/") {
		return nil, fmt.Errorf("path %q must start with /", ep.path)
	}
	ep.path = strings.TrimRight(ep.path, "/")
	if ep.path == "" {
		ep.path = "/"
	}
	if ep.provider, err = ec.FieldString(fieldEPProvider); err != nil {
		return nil, err
	}
	if ep.provider == "" {
		return nil, errors.New("provider is empty")
	}
	if ep.source, err = ec.FieldString(fieldEPSource); err != nil {
		return nil, err
	}
	if ep.source == "" {
		ep.source = ep.path
	}
	if ep.lenient, err = ec.FieldBool(fieldEPLenient); err != nil {
		return nil, err
	}
	if ep.verifier, ep.tokenInPath, err = auth.FromConfig(ec.Namespace(fieldEPAuth)); err != nil {
		return nil, err
	}
	ep.secretHeaders = secretHeaderSet(ep.verifier)
	if err := ep.transportFromConfig(ec); err != nil {
		return nil, err
	}
	if ep.ce, err = cloudEventsFromConfig(ec); err != nil {
		return nil, err
	}
	return ep, nil
}

// transportFromConfig reads the listener's TLS and trusted proxies.
func (w *webhookServer) transportFromConfig(conf *service.ParsedConfig) error {
	needClientCA := false
	for _, ep := range w.exact {
		needClientCA = needClientCA || ep.requireCert
	}
	var err error
	if w.tlsConf, err = tlsConfig(conf, needClientCA); err != nil {
		return err
	}
	proxies, err := conf.FieldStringList(fieldTrustedProxies)
	if err != nil {
		return err
	}
	w.trusted, err = parsePrefixes(fieldTrustedProxies, proxies, true)
	return err
}

// Connect starts listening. A port that cannot be bound fails the stream at
// start instead of leaving it running deaf.
func (w *webhookServer) Connect(ctx context.Context) error {
	if w.listener != nil {
		return nil
	}
	if w.arch != nil {
		for _, o := range []*service.OwnedOutput{w.arch.out, w.arch.rejected} {
			if o != nil {
				if err := o.Prime(); err != nil {
					return fmt.Errorf("webhook_server: starting the archive: %w", err)
				}
			}
		}
	}
	ln, err := net.Listen("tcp", w.address)
	if err != nil {
		return fmt.Errorf("webhook_server: listen on %s: %w", w.address, err)
	}
	w.listener = ln
	scheme := "http"
	if w.tlsConf != nil {
		scheme = "https"
		w.server.TLSConfig = w.tlsConf
		// HTTP/1.1 only: the early replies that refuse a body close the
		// connection, which HTTP/2 has no way to say.
		w.server.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	w.log.Infof("Receiving webhooks on %s://%s (%d endpoints)", scheme, ln.Addr(), len(w.exact))
	go func() {
		defer close(w.served)
		var err error
		if w.tlsConf != nil {
			err = w.server.ServeTLS(ln, "", "")
		} else {
			err = w.server.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Errorf("webhook_server stopped: %v", err)
		}
	}()
	w.ready.start()
	return nil
}

// beginStopping marks the start of shutdown: the engine reads no more, so
// readiness fails and requests it will not take are answered 503 at once.
func (w *webhookServer) beginStopping() {
	w.stopMu.Do(func() {
		w.ready.drain()
		close(w.stopping)
	})
}

// leaveQueue moves a queued request to state to, once: a queued request is
// taken or abandoned, never both.
func (w *webhookServer) leaveQueue(p *pendingRequest, to int32) bool {
	if p.state.CompareAndSwap(stateQueued, to) {
		w.ready.queued.Add(-1)
		return true
	}
	return false
}

// ReadBatch hands the pipeline every request that has arrived, up to
// max_batch_size, and answers each from its own message's outcome.
func (w *webhookServer) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	w.ready.took()
	w.watchMu.Do(func() {
		// The engine passes the same context to every ReadBatch and cancels
		// it when it stops reading (its soft stop), possibly while it is not
		// in ReadBatch at all: watch it, so shutdown begins at once.
		go func() {
			select {
			case <-ctx.Done():
				w.beginStopping()
			case <-w.closing:
			}
		}()
	})
	slot, err := w.takeBatchSlot(ctx)
	if err != nil {
		return nil, nil, err
	}
	for {
		reqs, err := w.gather(ctx)
		if err != nil {
			if slot {
				<-w.batchSlots
			}
			return nil, nil, err
		}
		if w.arch != nil && w.arch.out != nil {
			reqs = w.archiveBatch(ctx, reqs)
		}
		if len(reqs) > 0 {
			batch, ack := w.handOver(reqs, slot)
			return batch, ack, nil
		}
	}
}

// takeBatchSlot waits until fewer than max_pending_batches batches are
// unacknowledged, or max_pending_wait passes. Requests arriving meanwhile
// stay queued for the next batch. slot reports whether the batch holds a
// slot (false without a limit, or when it goes beyond the limit).
func (w *webhookServer) takeBatchSlot(ctx context.Context) (slot bool, err error) {
	if w.batchSlots == nil {
		return false, nil
	}
	select {
	case w.batchSlots <- struct{}{}:
		return true, nil
	default:
	}
	wait := time.NewTimer(w.pendingWait)
	defer wait.Stop()
	select {
	case w.batchSlots <- struct{}{}:
		return true, nil
	case <-wait.C:
		w.overLimitLog.Do(func() {
			w.log.Warnf("No pending batch was acknowledged within max_pending_wait (%s); handing the next one over beyond max_pending_batches (%d). A sink this slow, or an output that holds acknowledgements back (a batching policy), costs this wait per batch: raise max_pending_wait or set max_pending_batches to 0", w.pendingWait, cap(w.batchSlots))
		})
		return false, nil
	case <-ctx.Done():
		w.beginStopping()
		return false, ctx.Err()
	case <-w.closing:
		return false, service.ErrNotConnected
	}
}

// archiveBatch writes the archive records of reqs and answers 503 to those
// whose record could not be written; the rest go on to the pipeline.
func (w *webhookServer) archiveBatch(ctx context.Context, reqs []*pendingRequest) []*pendingRequest {
	errs := w.arch.write(ctx, reqs)
	kept := reqs[:0]
	for i, r := range reqs {
		if errs[i] != nil {
			r.done <- errs[i]
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// gather waits for a first request, then takes whatever else has arrived,
// up to max_batch_size (waiting batch_period for more when set).
func (w *webhookServer) gather(ctx context.Context) ([]*pendingRequest, error) {
	var reqs []*pendingRequest
	take := func(p *pendingRequest) {
		if w.leaveQueue(p, stateTaken) {
			reqs = append(reqs, p)
		}
	}
	w.ready.waiting.Store(true)
	for len(reqs) == 0 {
		select {
		case p := <-w.pending:
			take(p)
		case <-ctx.Done():
			// The engine cancels this context when it stops reading.
			w.ready.waiting.Store(false)
			w.beginStopping()
			return nil, ctx.Err()
		case <-w.closing:
			w.ready.waiting.Store(false)
			return nil, service.ErrNotConnected
		}
	}
	w.ready.waiting.Store(false)
	w.ready.took()
	var period <-chan time.Time
	if w.batchPeriod > 0 {
		t := time.NewTimer(w.batchPeriod)
		defer t.Stop()
		period = t.C
	}
gather:
	for len(reqs) < w.maxBatch {
		select {
		case p := <-w.pending:
			take(p)
		default:
			if period == nil {
				break gather
			}
			select {
			case p := <-w.pending:
				take(p)
			case <-period:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
	}

	return reqs, nil
}

// handOver makes the batch of reqs and the ack function that answers each
// request from its own message's outcome and frees the batch's slot.
func (w *webhookServer) handOver(reqs []*pendingRequest, slot bool) (service.MessageBatch, service.AckFunc) {
	w.mBatchSize.Set(int64(len(reqs)))
	w.mBatches.Incr(1)
	w.mBatchMessages.Incr(int64(len(reqs)))
	batch := make(service.MessageBatch, len(reqs))
	for i, r := range reqs {
		batch[i] = r.msg
	}
	index := batch.Index()
	var acked atomic.Bool
	return batch, func(_ context.Context, err error) error {
		if acked.Swap(true) {
			return nil // answered already
		}
		if slot {
			<-w.batchSlots
		}
		if err == nil {
			for _, r := range reqs {
				r.done <- nil
			}
			return nil
		}
		var berr *service.BatchError
		if !errors.As(err, &berr) {
			for _, r := range reqs {
				r.done <- err
			}
			return nil
		}
		results := make([]error, len(reqs))
		berr.WalkMessagesIndexedBy(index, func(i int, _ *service.Message, merr error) bool {
			if i >= 0 && i < len(results) && merr != nil {
				results[i] = merr
			}
			return true
		})
		for i, r := range reqs {
			r.done <- results[i]
		}
		return nil
	}
}

// Close stops the listener, answers every request that never reached the
// pipeline with 503, and waits for in-flight requests up to shutdown_timeout.
func (w *webhookServer) Close(ctx context.Context) error {
	w.beginStopping()
	w.closeMu.Do(func() { close(w.closing) })
	defer w.ready.close()
	if w.listener == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.shutdownWait)
	defer cancel()
	err := w.server.Shutdown(ctx)
	if err != nil {
		_ = w.server.Close()
	}
	<-w.served
	w.arch.close(ctx)
	return nil
}

type reply struct {
	Status    string `json:"status,omitempty"`
	Error     string `json:"error,omitempty"`
	RequestID string `json:"request_id"`
}

// exchange is what a reply needs to know of its request.
type exchange struct {
	id       string
	ep       *endpoint // nil when the path matched no endpoint
	received time.Time
	// bodyRead is set once the whole body was read. A reply before that
	// closes the connection, so the server does not wait for (or drain) a
	// body it is refusing, which a slow sender could stretch to read_timeout.
	bodyRead bool
}

func (w *webhookServer) respond(rw http.ResponseWriter, status int, x exchange, errText string) {
	// Labels come from the configured endpoint, never from the request path,
	// so arbitrary paths cannot grow the series and path tokens stay out.
	provider, endpoint := "", "unknown"
	if x.ep != nil {
		provider, endpoint = x.ep.provider, x.ep.path
	}
	w.mRequests.Incr(1, provider, endpoint, statusLabel(status))
	w.mDuration.Timing(time.Since(x.received).Nanoseconds(), provider, endpoint)
	// Keys in canonical form, set directly: this runs for every request.
	h := rw.Header()
	h["Content-Type"] = jsonContentType
	h["X-Request-Id"] = []string{x.id}
	h["Cache-Control"] = noStore
	// While draining, every reply also closes its connection, so clients
	// reconnect through the load balancer to the instances that stay. Idle
	// connections are not cut: a client could be sending on one.
	if !x.bodyRead || w.ready.draining.Load() {
		h.Set("Connection", "close")
	}
	var b []byte
	if status == http.StatusOK && errText == "" {
		// Request ids are letters and digits: nothing to escape.
		b = make([]byte, 0, len(acceptedPrefix)+len(x.id)+3)
		b = append(append(append(b, acceptedPrefix...), x.id...), "\"}\n"...)
	} else {
		b, _ = json.Marshal(reply{RequestID: x.id, Error: errText})
		b = append(b, '\n')
	}
	rw.WriteHeader(status)
	_, _ = rw.Write(b)
}

const acceptedPrefix = `{"status":"accepted","request_id":"`

var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// statusLabel is the status as a metric label, without an allocation for
// the statuses the input answers.
func statusLabel(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case http.StatusServiceUnavailable:
		return "503"
	case http.StatusUnauthorized:
		return "401"
	case http.StatusBadRequest:
		return "400"
	}
	return strconv.Itoa(status)
}

func (w *webhookServer) newRequestID() string {
	return w.idPrefix + strconv.FormatUint(w.idSeq.Add(1), 16)
}

func (w *webhookServer) route(path string) (*endpoint, string) {
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
	}
	if ep, ok := w.exact[path]; ok {
		return ep, ""
	}
	for _, ep := range w.prefixed {
		if rest, ok := strings.CutPrefix(path, ep.path+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
			return ep, rest
		}
	}
	return nil, ""
}

func (w *webhookServer) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	receivedAt := time.Now()
	if w.serveHealth(rw, req) {
		return
	}
	requestID := w.newRequestID()

	ep, pathToken := w.route(req.URL.Path)
	x := exchange{id: requestID, ep: ep, received: receivedAt}
	if ep == nil {
		w.respond(rw, http.StatusNotFound, x, "no webhook endpoint at this path")
		return
	}
	client := clientAddr(req, w.trusted)
	if status, errText := ep.transportCheck(req, client); status != 0 {
		w.log.Debugf("Refused a request to %s from %s: %s", ep.path, client, errText)
		w.arch.reject(ep, req, x, status, errText, nil)
		w.respond(rw, status, x, errText)
		return
	}
	if ep.ce != nil && req.Method == http.MethodOptions {
		w.handshake(rw, req, ep, x)
		return
	}
	if req.Method != http.MethodPost {
		if ep.ce != nil {
			rw.Header().Set("Allow", cloudEventsAllowMethods)
		} else {
			rw.Header().Set("Allow", http.MethodPost)
		}
		w.respond(rw, http.StatusMethodNotAllowed, x, "only POST is accepted")
		return
	}
	if !w.contentTypeAllowed(req.Header.Get("Content-Type")) {
		w.respond(rw, http.StatusUnsupportedMediaType, x, "content type must be JSON")
		return
	}
	if ep.ce != nil {
		if status, errText := cloudEventsMode(req); status != 0 {
			w.respond(rw, status, x, errText)
			return
		}
	}
	if req.ContentLength > w.maxBody {
		w.respond(rw, http.StatusRequestEntityTooLarge, x, "body too large")
		return
	}

	select {
	case w.slots <- struct{}{}:
		defer func() { <-w.slots }()
	default:
		rw.Header().Set("Retry-After", "1")
		w.respond(rw, http.StatusServiceUnavailable, x, "too many concurrent requests")
		return
	}
	if w.rateLimit != "" {
		if wait := w.rateLimitWait(req.Context()); wait > 0 {
			rw.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			w.respond(rw, http.StatusTooManyRequests, x, "rate limit exceeded")
			return
		}
	}

	body, status, errText := w.readBody(rw, req)
	if status != 0 {
		w.respond(rw, status, x, errText)
		return
	}
	x.bodyRead = true

	// The query is parsed only for a verifier that reads it (a token in the URL).
	authReq := auth.Request{Header: req.Header.Get, Query: func(name string) string { return req.URL.Query().Get(name) }, PathToken: pathToken, Body: body}
	if err := ep.verifier.Verify(authReq); err != nil {
		w.log.Debugf("Rejected delivery to %s from %s: %v", ep.path, req.RemoteAddr, err)
		w.mAuthFailures.Incr(1, ep.provider, ep.path)
		w.arch.reject(ep, req, x, http.StatusUnauthorized, err.Error(), body)
		w.respond(rw, http.StatusUnauthorized, x, "unauthorized")
		return
	}
	msg := service.NewMessage(body)
	var err error
	if ep.ce != nil {
		// The CloudEvents processor reads the body by the binding's rules.
		err = jsonread.Check(body, jsonread.Options{Lenient: ep.lenient})
	} else {
		// Checking is decoding: the provider processor takes this document
		// instead of reading the body again.
		msg, err = event.CheckAndKeep(msg, body, ep.lenient)
	}
	if err != nil {
		w.arch.reject(ep, req, x, http.StatusBadRequest, err.Error(), body)
		w.respond(rw, http.StatusBadRequest, x, err.Error())
		return
	}
	msg.MetaSetMut(MetaProvider, ep.provider)
	msg.MetaSetMut(MetaEndpoint, ep.path)
	msg.MetaSetMut(MetaSource, ep.source)
	msg.MetaSetMut(MetaRemoteAddr, req.RemoteAddr)
	msg.MetaSetMut(MetaReceivedAt, receivedAt.UTC().Format(time.RFC3339Nano))
	msg.MetaSetMut(MetaRequestID, requestID)
	if client.IsValid() {
		msg.MetaSetMut(MetaClientIP, client.String())
	}
	if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 {
		msg.MetaSetMut(MetaClientCertSubject, sanitizeHeaderValue(req.TLS.VerifiedChains[0][0].Subject.String()))
	}
	if ep.ce != nil {
		setCloudEventsMeta(msg, req.Header)
	}
	for _, mh := range w.metaHeaders {
		if v := req.Header.Get(mh.header); v != "" {
			msg.MetaSetMut(mh.key, sanitizeHeaderValue(v))
		}
	}

	p := &pendingRequest{msg: msg, done: make(chan error, 1)}
	if w.arch != nil && w.arch.out != nil {
		p.archiveHeaders = w.arch.keptHeaders(ep, req.Header)
	}
	timer := ackTimers.Get().(*time.Timer)
	timer.Reset(w.timeout)
	defer func() {
		timer.Stop()
		ackTimers.Put(timer)
	}()

	w.ready.queued.Add(1)
	select {
	case <-w.stopping:
		w.ready.queued.Add(-1)
		rw.Header().Set("Retry-After", "5")
		w.respond(rw, http.StatusServiceUnavailable, x, "shutting down; retry later")
		return
	default:
	}
	select {
	case w.pending <- p:
	case <-timer.C:
		w.ready.queued.Add(-1)
		w.respond(rw, http.StatusServiceUnavailable, x, "pipeline is not accepting messages")
		return
	case <-w.stopping:
		w.ready.queued.Add(-1)
		rw.Header().Set("Retry-After", "5")
		w.respond(rw, http.StatusServiceUnavailable, x, "shutting down; retry later")
		return
	case <-w.closing:
		w.ready.queued.Add(-1)
		w.respond(rw, http.StatusServiceUnavailable, x, "shutting down")
		return
	}

	stopping := w.stopping
	for {
		select {
		case err := <-p.done:
			if err != nil {
				w.log.Warnf("Delivery %s to %s was not written: %v", requestID, ep.path, err)
				w.respond(rw, http.StatusServiceUnavailable, x, "event was not written; retry later")
				return
			}
			w.respond(rw, http.StatusOK, x, "")
		case <-timer.C:
			w.abandon(rw, p, x, "timed out waiting for the event to be written; retry later")
		case <-w.closing:
			w.abandonOnClose(rw, p, x)
		case <-stopping:
			// The engine reads no more: a request still queued will never
			// be taken. One already taken still gets its outcome.
			if w.leaveQueue(p, stateAbandoned) {
				rw.Header().Set("Retry-After", "5")
				w.respond(rw, http.StatusServiceUnavailable, x, "shutting down; retry later")
				return
			}
			stopping = nil
			continue
		}
		return
	}
}

// abandon answers 503 for a request whose outcome did not arrive in time. If
// the request was never taken into a batch it is withdrawn, so it will never
// be written; otherwise it may still be written, which the idempotent sinks
// absorb when the provider retries.
func (w *webhookServer) abandon(rw http.ResponseWriter, p *pendingRequest, x exchange, errText string) {
	if !w.leaveQueue(p, stateAbandoned) {
		// Taken at the last moment: take its result if it is already there.
		select {
		case err := <-p.done:
			if err == nil {
				w.respond(rw, http.StatusOK, x, "")
				return
			}
		default:
		}
	}
	rw.Header().Set("Retry-After", "60")
	w.respond(rw, http.StatusServiceUnavailable, x, errText)
}

// abandonOnClose answers a request still waiting when the input closes. The
// engine closes an input only after every batch it handed to the pipeline was
// acknowledged, so a request without an outcome by now never reached the
// pipeline (its batch was read as the stream stopped) and will not be
// written: 503 is its true answer.
func (w *webhookServer) abandonOnClose(rw http.ResponseWriter, p *pendingRequest, x exchange) {
	w.leaveQueue(p, stateAbandoned)
	select {
	case err := <-p.done:
		if err == nil {
			w.respond(rw, http.StatusOK, x, "")
			return
		}
		w.respond(rw, http.StatusServiceUnavailable, x, "event was not written; retry later")
	default:
		rw.Header().Set("Retry-After", "5")
		w.respond(rw, http.StatusServiceUnavailable, x, "shutting down; retry later")
	}
}

func (w *webhookServer) rateLimitWait(ctx context.Context) time.Duration {
	var wait time.Duration
	err := w.mgr.AccessRateLimit(ctx, w.rateLimit, func(rl service.RateLimit) {
		var err error
		if wait, err = rl.Access(ctx); err != nil {
			wait = time.Second
		}
	})
	if err != nil {
		return time.Second
	}
	return wait
}

// ackTimers are the timers of requests waiting for their acknowledgement,
// reused from one request to the next. A stopped timer can be reset safely
// (its channel keeps no value from before Stop since Go 1.23).
var ackTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// exactBodyMax is the largest declared body read into a buffer allocated
// up front; a larger one grows as it arrives, so a sender declaring a large
// body and sending nothing does not hold that much memory.
const exactBodyMax = 64 << 10

func (w *webhookServer) readBody(rw http.ResponseWriter, req *http.Request) ([]byte, int, string) {
	body := http.MaxBytesReader(rw, req.Body, w.maxBody)
	var b []byte
	var err error
	if size := req.ContentLength; size >= 0 && size <= min(w.maxBody, exactBodyMax) {
		// The declared length (the server ends the body there): one buffer
		// of exactly that size. bytes.Buffer would want room for 512 more
		// before it sees the end, and grow it to twice the size.
		b = make([]byte, size)
		_, err = io.ReadFull(body, b)
	} else {
		var buf bytes.Buffer
		_, err = buf.ReadFrom(body)
		b = buf.Bytes()
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, http.StatusRequestEntityTooLarge, "body too large"
		}
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return nil, http.StatusRequestTimeout, "body not received in time"
		}
		return nil, http.StatusBadRequest, "could not read body"
	}
	if len(b) == 0 {
		return nil, http.StatusBadRequest, "empty body"
	}
	return b, 0, ""
}

func (w *webhookServer) contentTypeAllowed(ct string) bool {
	// The usual header is exactly an allowed type: no parsing needed.
	if ct == "" || slices.Contains(w.contentTypes, ct) {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	for _, allowed := range w.contentTypes {
		if mt == allowed {
			return true
		}
		// application/cloudevents+json and the like.
		if typ, sub, ok := strings.Cut(allowed, "/"); ok && strings.HasPrefix(mt, typ+"/") && strings.HasSuffix(mt, "+"+sub) {
			return true
		}
	}
	return false
}

// sanitizeHeaderValue drops control characters so a header value copied into
// metadata cannot smuggle line breaks into logs or downstream headers.
func sanitizeHeaderValue(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v)
}
