package webhook

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/cloudevents"
)

// CloudEvents senders: an endpoint that takes events in the binary and
// structured modes of the CloudEvents HTTP binding and answers the
// abuse-protection handshake of the CloudEvents web hook specification.

const (
	fieldEPCloudEvents      = "cloudevents"
	fieldCEEnabled          = "enabled"
	fieldCEAllowedOrigins   = "allowed_origins"
	fieldCEAllowedRate      = "allowed_rate"
	headerRequestOrigin     = "WebHook-Request-Origin"
	headerRequestRate       = "WebHook-Request-Rate"
	headerAllowedOrigin     = "WebHook-Allowed-Origin"
	headerAllowedRate       = "WebHook-Allowed-Rate"
	cloudEventsAllowMethods = "OPTIONS, POST"
)

func cloudEventsField() *service.ConfigField {
	return service.NewObjectField(fieldEPCloudEvents,
		service.NewBoolField(fieldCEEnabled).Description("Take CloudEvents on this endpoint.").Default(false),
		service.NewStringListField(fieldCEAllowedOrigins).Description("The sender origins (`WebHook-Request-Origin`, a DNS name such as `events.example.com`) this endpoint consents to in the handshake; `*` consents to any. A refused origin gets 403 without the `WebHook-Allowed-*` headers.").Default([]string{"*"}),
		service.NewStringField(fieldCEAllowedRate).Description("The delivery rate granted in the handshake, in requests per minute, or `*` for no limit. A sender asking for less (`WebHook-Request-Rate`) is granted what it asked.").Default("*"),
	).Description(`Receive CloudEvents (https://cloudevents.io) over HTTP, in binary mode (attributes in ` + "`ce-*`" + ` headers, the data as the body) or structured mode (` + "`Content-Type: application/cloudevents+json`" + `, the whole event as the body). Each ` + "`ce-*`" + ` header and the ` + "`Content-Type`" + ` are kept as metadata under their lower-case names, and archived, so the ` + "`cloudevents_webhook`" + ` processor can read the event; a request that is neither mode answers 400, a batch (` + "`application/cloudevents-batch+json`" + `) 415. The body must be a JSON object in both modes, as on every endpoint.

` + "`OPTIONS`" + ` requests carrying ` + "`WebHook-Request-Origin`" + ` get the abuse-protection handshake of the CloudEvents web hook specification: 200 with ` + "`Allow`" + `, ` + "`WebHook-Allowed-Origin`" + ` and ` + "`WebHook-Allowed-Rate`" + ` for an allowed origin. The handshake needs no credentials (it grants nothing but consent), but ` + "`allowed_ips`" + ` and ` + "`require_client_cert`" + ` apply to it.`).Advanced()
}

type ceEndpoint struct {
	anyOrigin bool
	origins   []string // lower case
	rate      int      // requests per minute; 0: no limit
}

func cloudEventsFromConfig(ec *service.ParsedConfig) (*ceEndpoint, error) {
	c := ec.Namespace(fieldEPCloudEvents)
	enabled, err := c.FieldBool(fieldCEEnabled)
	if err != nil || !enabled {
		return nil, err
	}
	ce := &ceEndpoint{}
	origins, err := c.FieldStringList(fieldCEAllowedOrigins)
	if err != nil {
		return nil, err
	}
	for _, o := range origins {
		o = strings.ToLower(strings.TrimSpace(o))
		switch o {
		case "":
		case "*":
			ce.anyOrigin = true
		default:
			ce.origins = append(ce.origins, o)
		}
	}
	if !ce.anyOrigin && len(ce.origins) == 0 {
		return nil, errors.New("cloudevents.allowed_origins is empty: list the senders' origins, or * for any")
	}
	rate, err := c.FieldString(fieldCEAllowedRate)
	if err != nil {
		return nil, err
	}
	if rate = strings.TrimSpace(rate); rate != "*" {
		n, err := strconv.Atoi(rate)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("cloudevents.allowed_rate %q must be * or a positive number of requests per minute", rate)
		}
		ce.rate = n
	}
	return ce, nil
}

// handshake answers a CloudEvents validation request (OPTIONS).
func (w *webhookServer) handshake(rw http.ResponseWriter, req *http.Request, ep *endpoint, x exchange) {
	rw.Header().Set("Allow", cloudEventsAllowMethods)
	origin := strings.TrimSpace(req.Header.Get(headerRequestOrigin))
	if origin == "" {
		w.respond(rw, http.StatusBadRequest, x, "a validation request needs "+headerRequestOrigin)
		return
	}
	ce := ep.ce
	allowed := ce.anyOrigin || slices.Contains(ce.origins, strings.ToLower(origin))
	if !allowed {
		w.log.Debugf("Refused the CloudEvents handshake of origin %q on %s", sanitizeHeaderValue(origin), ep.path)
		w.respond(rw, http.StatusForbidden, x, "origin not allowed")
		return
	}
	granted := "*"
	if ce.anyOrigin {
		rw.Header().Set(headerAllowedOrigin, "*")
	} else {
		rw.Header().Set(headerAllowedOrigin, origin)
	}
	asked, err := strconv.Atoi(strings.TrimSpace(req.Header.Get(headerRequestRate)))
	if err != nil || asked <= 0 {
		asked = 0
	}
	switch {
	case ce.rate > 0 && (asked == 0 || asked > ce.rate):
		granted = strconv.Itoa(ce.rate)
	case asked > 0:
		granted = strconv.Itoa(asked)
	}
	rw.Header().Set(headerAllowedRate, granted)
	w.respond(rw, http.StatusOK, x, "")
}

// cloudEventsMode checks that a request to a CloudEvents endpoint carries an
// event, and returns 0 or the status and error text that refuse it.
func cloudEventsMode(req *http.Request) (int, string) {
	mediaType := ""
	if ct := req.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			mediaType = strings.ToLower(mt)
		}
	}
	if mediaType == cloudevents.BatchMediaType {
		return http.StatusUnsupportedMediaType, "batched CloudEvents are not accepted; send one event per request"
	}
	if cloudevents.Mode(mediaType, req.Header.Get("Ce-Specversion") != "") == "" {
		return http.StatusBadRequest, "not a CloudEvent: send Content-Type " + cloudevents.StructuredMediaType + " or ce-* headers"
	}
	return 0, ""
}

// setCloudEventsMeta copies the binding's headers into metadata: every ce-*
// header and the Content-Type, under their lower-case names.
func setCloudEventsMeta(msg *service.Message, h http.Header) {
	for name, values := range h {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, cloudevents.HeaderPrefix) && len(values) > 0 {
			msg.MetaSetMut(lower, sanitizeHeaderValue(values[0]))
		}
	}
	if ct := h.Get("Content-Type"); ct != "" {
		msg.MetaSetMut(cloudevents.MetaContentType, sanitizeHeaderValue(ct))
	}
}

// cloudEventsHeaders lists the binding's headers of a request, for its
// archive record, so a replay reads the same event.
func cloudEventsHeaders(h http.Header, into map[string]string) map[string]string {
	for name, values := range h {
		if strings.HasPrefix(strings.ToLower(name), cloudevents.HeaderPrefix) && len(values) > 0 {
			if into == nil {
				into = map[string]string{}
			}
			into[name] = values[0]
		}
	}
	if ct := h.Get("Content-Type"); ct != "" {
		if into == nil {
			into = map[string]string{}
		}
		if _, ok := into["Content-Type"]; !ok {
			into["Content-Type"] = ct
		}
	}
	return into
}
