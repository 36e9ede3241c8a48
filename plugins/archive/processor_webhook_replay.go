package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	fieldSealKeys     = "seal_keys"
	fieldSkipVerify   = "skip_seal_verification"
	fieldFrom         = "from"
	fieldTo           = "to"
	fieldProviders    = "providers"
	fieldEndpoints    = "endpoints"
	metaReplayed      = "webhook_replayed"
	metaReplayedAt    = "webhook_replayed_at"
	replayRecordError = "archive record is not valid JSON of the archive format"
)

func replaySpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Parsing").
		Summary("Turns a raw archive record (one line written by the `archive` of the `webhook_server` input) back into the delivery it was: the raw body as the message, and the same metadata the input set, so the same provider processors and mappings run on it.").
		Description(`
The record's seal is verified first with `+"`seal_keys`"+` (the keys the input sealed with): a record whose body, headers or
provenance changed since it was written fails the message with the reason, and the replay config routes it to its
dead-letter sink. `+"`skip_seal_verification: true`"+` replays unsealed or unverifiable records and logs a warning for
each; use it only for archives you trust. Provider signatures kept in the record's headers (The City's HMAC mode, for
instance) can be verified again by the provider processor (`+"`thecity_webhook.verify`"+`).

Records outside the `+"`from`"+` / `+"`to`"+` receive-time window or not matching `+"`providers`"+` / `+"`endpoints`"+` are
dropped. Metadata set: the input's `+"`webhook_*`"+` keys with their original values (so event ids and receive times
are the same as on the first run), every archived header under its lower-case name, `+"`webhook_replayed: true`"+` and
`+"`webhook_replayed_at`"+`.`).
		Fields(
			service.NewStringListField(fieldSealKeys).Description("Keys that may have sealed the records (rotation). Empty entries are ignored.").Default([]string{}).Secret(),
			service.NewBoolField(fieldSkipVerify).Description("Replay records whose seal is missing or does not verify. Each is logged.").Default(false),
			service.NewStringField(fieldFrom).Description("Replay records received at or after this time (RFC 3339). Empty: from the start.").Default(""),
			service.NewStringField(fieldTo).Description("Replay records received before this time (RFC 3339). Empty: up to now.").Default(""),
			service.NewStringListField(fieldProviders).Description("Replay only these providers. Empty (or only empty entries): all.").Default([]string{}),
			service.NewStringListField(fieldEndpoints).Description("Replay only these endpoint paths. Empty (or only empty entries): all.").Default([]string{}),
		).
		Example("Replay an archive directory", "", `
input:
  file:
    paths: [ ./data/archive/**/*.ndjson ]
    scanner:
      lines: {}
pipeline:
  processors:
    - webhook_replay:
        seal_keys: [ "${HOOKPIPE_ARCHIVE_KEY}" ]
        from: 2026-11-24T00:00:00Z
    # ... the same processors and mapping as the live config
`)
}

func init() {
	err := service.RegisterProcessor("webhook_replay", replaySpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
		return newReplay(conf, mgr)
	})
	if err != nil {
		panic(err)
	}
}

type replay struct {
	keys       [][]byte
	skipVerify bool
	from, to   time.Time
	providers  map[string]bool
	endpoints  map[string]bool
	log        *service.Logger
	now        func() time.Time
}

func newReplay(conf *service.ParsedConfig, mgr *service.Resources) (*replay, error) {
	r := &replay{log: mgr.Logger(), now: time.Now}
	keys, err := conf.FieldStringList(fieldSealKeys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k != "" {
			r.keys = append(r.keys, []byte(k))
		}
	}
	if r.skipVerify, err = conf.FieldBool(fieldSkipVerify); err != nil {
		return nil, err
	}
	if len(r.keys) == 0 && !r.skipVerify {
		return nil, errors.New("webhook_replay: no seal key is set; set seal_keys, or skip_seal_verification: true to replay unverified records")
	}
	if r.skipVerify {
		r.log.Warnf("webhook_replay: seal verification is off: records that fail it are replayed anyway")
	}
	for field, dst := range map[string]*time.Time{fieldFrom: &r.from, fieldTo: &r.to} {
		s, err := conf.FieldString(field)
		if err != nil {
			return nil, err
		}
		if s == "" {
			continue
		}
		if *dst, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, fmt.Errorf("webhook_replay: %s: %w", field, err)
		}
	}
	for field, dst := range map[string]*map[string]bool{fieldProviders: &r.providers, fieldEndpoints: &r.endpoints} {
		l, err := conf.FieldStringList(field)
		if err != nil {
			return nil, err
		}
		for _, v := range l {
			if v == "" {
				continue // an unset ${VAR:} entry
			}
			if *dst == nil {
				*dst = map[string]bool{}
			}
			(*dst)[v] = true
		}
	}
	return r, nil
}

// Process implements service.Processor.
func (r *replay) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	raw, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Version == 0 || rec.Provider == "" {
		msg.MetaSetMut("event_status", "malformed")
		return nil, errors.New(replayRecordError)
	}
	received, err := time.Parse(time.RFC3339Nano, rec.ReceivedAt)
	if err != nil {
		msg.MetaSetMut("event_status", "malformed")
		return nil, fmt.Errorf("archive record has no valid received_at: %w", err)
	}
	if (!r.from.IsZero() && received.Before(r.from)) || (!r.to.IsZero() && !received.Before(r.to)) ||
		(r.providers != nil && !r.providers[rec.Provider]) || (r.endpoints != nil && !r.endpoints[rec.Endpoint]) {
		return nil, nil
	}

	if err := rec.VerifySeal(r.keys); err != nil {
		if !r.skipVerify {
			msg.MetaSetMut("webhook_provider", rec.Provider)
			msg.MetaSetMut("webhook_request_id", rec.RequestID)
			msg.MetaSetMut("webhook_received_at", rec.ReceivedAt)
			msg.MetaSetMut("event_status", "unauthenticated")
			return nil, fmt.Errorf("replay refused for request %s: %w", rec.RequestID, err)
		}
		r.log.Warnf("Replaying request %s (%s) without a verified seal: %v", rec.RequestID, rec.Provider, err)
	}

	out := service.NewMessage([]byte(rec.Body))
	out.MetaSetMut("webhook_provider", rec.Provider)
	out.MetaSetMut("webhook_endpoint", rec.Endpoint)
	out.MetaSetMut("webhook_source", rec.Source)
	out.MetaSetMut("webhook_remote_addr", rec.RemoteAddr)
	out.MetaSetMut("webhook_received_at", rec.ReceivedAt)
	out.MetaSetMut("webhook_request_id", rec.RequestID)
	for k, v := range rec.Headers {
		out.MetaSetMut(strings.ToLower(k), v)
	}
	out.MetaSetMut(metaReplayed, "true")
	out.MetaSetMut(metaReplayedAt, r.now().UTC().Format(time.RFC3339Nano))
	return service.MessageBatch{out}, nil
}

// Close implements service.Processor.
func (r *replay) Close(context.Context) error { return nil }
