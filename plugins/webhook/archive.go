package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/archive"
	"github.com/hookpipe/hookpipe/plugins/auth"
)

const (
	fieldArchive              = "archive"
	fieldArchiveHeaders       = "archive_headers"
	fieldArchiveSealKeys      = "archive_seal_keys"
	fieldRejectedArchive      = "rejected_archive"
	fieldRejectedBodyMaxBytes = "rejected_body_max_bytes"
)

// Headers that carry provider signatures, ids and timestamps: what a replay
// needs to verify a delivery again. Headers whose value is a secret for an
// endpoint (basic auth, a shared signature) are never archived.
var defaultArchiveHeaders = []string{
	"Content-Type", "User-Agent", "X-City-Webhook-Signature",
	"webhook-id", "webhook-timestamp", "webhook-signature",
	"X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event", "Stripe-Signature",
}

func archiveFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewOutputField(fieldArchive).Description("Where every accepted request is archived, exactly as received, before it enters the pipeline: one JSON record per request (body, the headers of `archive_headers`, receive time, endpoint, remote address, request id, seal). A request is answered 200 only when its record is written **and** its event is written by the pipeline's output; a failed archive write answers 503. Use a `file` output with the `lines` codec (partitioned by `webhook_provider` and receive date) or `aws_s3` with `archive: lines` batching. Replay with the `webhook_replay` processor.").Optional(),
		service.NewStringListField(fieldArchiveHeaders).Description("Request headers kept in archive records, for verifying a delivery again on replay. Headers that carry an endpoint's secret (basic auth, The City's shared signature value, a header token) are left out whatever this says.").Default(defaultArchiveHeaders).Advanced(),
		service.NewStringListField(fieldArchiveSealKeys).Description("Keys for sealing archive records (HMAC-SHA256 over the whole record): the first seals, replay accepts any. Without a key records are not sealed and replay must be told to skip verification.").Default([]string{}).Secret(),
		service.NewOutputField(fieldRejectedArchive).Description("Optional forensic archive of rejected requests (bad credentials, malformed bodies): a record with the status, the reason and at most `rejected_body_max_bytes` of the body, written in the background (a full or failing archive drops records, counted in `webhook_rejected_archive_dropped_total`). No secret header is ever kept. Off by default.").Optional().Advanced(),
		service.NewIntField(fieldRejectedBodyMaxBytes).Description("The most body bytes kept in a rejected-request record.").Default(4096).Advanced(),
	}
}

type archiver struct {
	out      *service.OwnedOutput
	headers  []string
	sealKey  []byte
	timeout  time.Duration
	rejected *service.OwnedOutput
	maxBody  int
	dropped  *service.MetricCounter
	log      *service.Logger
}

func newArchiver(conf *service.ParsedConfig, mgr *service.Resources, timeout time.Duration) (*archiver, error) {
	a := &archiver{timeout: timeout, log: mgr.Logger(), dropped: mgr.Metrics().NewCounter("webhook_rejected_archive_dropped_total")}
	var err error
	if conf.Contains(fieldArchive) {
		if a.out, err = conf.FieldOutput(fieldArchive); err != nil {
			return nil, err
		}
	}
	if conf.Contains(fieldRejectedArchive) {
		if a.rejected, err = conf.FieldOutput(fieldRejectedArchive); err != nil {
			return nil, err
		}
	}
	if a.headers, err = conf.FieldStringList(fieldArchiveHeaders); err != nil {
		return nil, err
	}
	keys, err := conf.FieldStringList(fieldArchiveSealKeys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k != "" {
			a.sealKey = []byte(k)
			break
		}
	}
	if a.maxBody, err = conf.FieldInt(fieldRejectedBodyMaxBytes); err != nil {
		return nil, err
	}
	if a.out == nil && a.rejected == nil {
		return nil, nil
	}
	return a, nil
}

// keptHeaders returns the archivable headers of a request to endpoint ep.
func (a *archiver) keptHeaders(ep *endpoint, h http.Header) map[string]string {
	var out map[string]string
	for _, name := range a.headers {
		if ep.secretHeaders[http.CanonicalHeaderKey(name)] {
			continue
		}
		if v := h.Get(name); v != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = v
		}
	}
	if ep.ce != nil {
		out = cloudEventsHeaders(h, out)
	}
	return out
}

func secretHeaderSet(v auth.Verifier) map[string]bool {
	set := map[string]bool{}
	if s, ok := v.(auth.SecretHeaders); ok {
		for _, h := range s.SecretHeaders() {
			set[http.CanonicalHeaderKey(h)] = true
		}
	}
	return set
}

// record builds the archive message of an accepted request. Its metadata is
// the input's, so an archive output can partition by provider and date.
func (a *archiver) record(p *pendingRequest) *service.Message {
	meta := func(k string) string { v, _ := p.msg.MetaGet(k); return v }
	body, _ := p.msg.AsBytes()
	rec := archive.Record{
		Version:    archive.RecordVersion,
		ReceivedAt: meta(MetaReceivedAt),
		Provider:   meta(MetaProvider),
		Endpoint:   meta(MetaEndpoint),
		Source:     meta(MetaSource),
		RemoteAddr: meta(MetaRemoteAddr),
		RequestID:  meta(MetaRequestID),
		Headers:    p.archiveHeaders,
		Body:       string(body),
	}
	if a.sealKey != nil {
		rec.SealWith(a.sealKey)
	}
	b, _ := json.Marshal(rec)
	m := service.NewMessage(b)
	for _, k := range []string{MetaProvider, MetaEndpoint, MetaReceivedAt, MetaRequestID} {
		m.MetaSetMut(k, meta(k))
	}
	return m
}

// write archives the requests and returns each one's error (nil: archived).
func (a *archiver) write(ctx context.Context, reqs []*pendingRequest) []error {
	errs := make([]error, len(reqs))
	batch := make(service.MessageBatch, len(reqs))
	for i, p := range reqs {
		batch[i] = a.record(p)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	err := a.out.WriteBatch(ctx, batch)
	if err == nil {
		return errs
	}
	var berr *service.BatchError
	if errors.As(err, &berr) {
		berr.WalkMessagesIndexedBy(batch.Index(), func(i int, _ *service.Message, merr error) bool {
			if i >= 0 && i < len(errs) && merr != nil {
				errs[i] = archiveError{merr}
			}
			return true
		})
		return errs
	}
	for i := range errs {
		errs[i] = archiveError{err}
	}
	return errs
}

type archiveError struct{ err error }

func (e archiveError) Error() string { return "archive write failed: " + e.err.Error() }
func (e archiveError) Unwrap() error { return e.err }

// rejectedRecord is what the forensic archive keeps of a refused request.
type rejectedRecord struct {
	ReceivedAt string            `json:"received_at"`
	Endpoint   string            `json:"endpoint"`
	Path       string            `json:"path"`
	RemoteAddr string            `json:"remote_addr"`
	RequestID  string            `json:"request_id"`
	Status     int               `json:"status"`
	Reason     string            `json:"reason"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
	Truncated  bool              `json:"body_truncated,omitempty"`
}

// reject records a refused request in the background; it never delays or
// changes the reply.
func (a *archiver) reject(ep *endpoint, req *http.Request, x exchange, status int, reason string, body []byte) {
	if a == nil || a.rejected == nil {
		return
	}
	rec := rejectedRecord{
		ReceivedAt: x.received.UTC().Format(time.RFC3339Nano),
		Path:       strings.ToValidUTF8(req.URL.Path, "\uFFFD"),
		RemoteAddr: req.RemoteAddr,
		RequestID:  x.id,
		Status:     status,
		Reason:     reason,
	}
	if ep != nil {
		rec.Endpoint = ep.path
		rec.Headers = a.keptHeaders(ep, req.Header)
		if ep.tokenInPath {
			rec.Path = ep.path + "/…"
		}
	} else {
		unknown := &endpoint{secretHeaders: map[string]bool{"Authorization": true, auth.DefaultCitySignatureHeader: true}}
		rec.Headers = a.keptHeaders(unknown, req.Header)
	}
	if len(body) > a.maxBody {
		body, rec.Truncated = body[:a.maxBody], true
	}
	rec.Body = strings.ToValidUTF8(string(body), "\uFFFD")
	b, _ := json.Marshal(rec)
	m := service.NewMessage(b)
	m.MetaSetMut(MetaReceivedAt, rec.ReceivedAt)
	m.MetaSetMut(MetaRequestID, x.id)
	if err := a.rejected.WriteBatchNonBlocking(service.MessageBatch{m}, func(_ context.Context, err error) error {
		if err != nil {
			a.dropped.Incr(1)
		}
		return nil
	}); err != nil {
		a.dropped.Incr(1)
	}
}

func (a *archiver) close(ctx context.Context) {
	if a == nil {
		return
	}
	if a.out != nil {
		_ = a.out.Close(ctx)
	}
	if a.rejected != nil {
		_ = a.rejected.Close(ctx)
	}
}
