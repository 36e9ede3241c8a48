//go:build integration

package acceptance

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// Secrets of the three endpoints of configs/generic_provider.yaml. The
// requests below are signed here with crypto/hmac and crypto/ed25519 as each
// provider documents, not with hookpipe's code.
var (
	svixKey      = []byte("acceptance-svix-current-key-32b")
	svixPrevKey  = []byte("acceptance-svix-previous-key-32")
	svixSecret   = "whsec_" + base64.StdEncoding.EncodeToString(svixKey)
	svixPrevious = "whsec_" + base64.StdEncoding.EncodeToString(svixPrevKey)
)

const (
	ghWebhookSecret   = "acceptance github secret"
	ghWebhookPrevious = "acceptance github previous secret"
	stripeSecret      = "whsec_acceptance_stripe_current"
	stripePrevious    = "whsec_acceptance_stripe_previous"
)

func hmacSHA256(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// svixHeaders signs a delivery as a Standard Webhooks sender does.
func svixHeaders(key []byte, id string, ts time.Time, body string) map[string]string {
	t := strconv.FormatInt(ts.Unix(), 10)
	sig := base64.StdEncoding.EncodeToString(hmacSHA256(key, id, ".", t, ".", body))
	return map[string]string{"webhook-id": id, "webhook-timestamp": t, "webhook-signature": "v1," + sig}
}

func githubHeaders(secret, delivery, event, body string) map[string]string {
	return map[string]string{
		"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(hmacSHA256([]byte(secret), body)),
		"X-GitHub-Delivery":   delivery,
		"X-GitHub-Event":      event,
	}
}

func stripeSig(secret string, ts time.Time, body string) string {
	return hex.EncodeToString(hmacSHA256([]byte(secret), strconv.FormatInt(ts.Unix(), 10), ".", body))
}

func stripeHeaders(ts time.Time, sigs ...string) map[string]string {
	h := "t=" + strconv.FormatInt(ts.Unix(), 10)
	for _, s := range sigs {
		h += ",v1=" + s
	}
	return map[string]string{"Stripe-Signature": h}
}

type delivery struct {
	name   string
	path   string
	body   string
	header map[string]string
	status int
}

func startGeneric(t *testing.T, env ...string) (*harness.Hookpipe, string) {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("the sqlite3 CLI is needed to read the sink back independently (apt-get install sqlite3)")
	}
	db := filepath.Join(t.TempDir(), "generic.db")
	hp := harness.StartHookpipe(t, "configs/generic_provider.yaml", append([]string{"HOOKPIPE_SQLITE_DSN=file:" + db}, env...)...)
	return hp, db
}

// send posts each delivery and checks its status; a refused one must leave
// both tables as they were.
func send(t *testing.T, hp *harness.Hookpipe, db string, ds []delivery) {
	t.Helper()
	for _, d := range ds {
		before := count(t, db, "events") + count(t, db, "dead_letters")
		status, reply := hp.Post(t, d.path, []byte(d.body), d.header)
		if status != d.status {
			t.Fatalf("%s: status %d, want %d (%s)\n%s", d.name, status, d.status, reply, harness.TailFile(hp.LogPath, 3000))
		}
		for _, secret := range []string{svixSecret, svixPrevious, ghWebhookSecret, ghWebhookPrevious, stripeSecret, stripePrevious} {
			if strings.Contains(reply, secret) {
				t.Fatalf("%s: the reply leaks a secret: %s", d.name, reply)
			}
		}
		if after := count(t, db, "events") + count(t, db, "dead_letters"); d.status != 200 && after != before {
			t.Fatalf("%s: refused with %d but %d rows were written", d.name, status, after-before)
		}
	}
}

// storedEvents reads back one source's events, checked as CloudEvents.
func storedEvents(t *testing.T, db, source string) map[string]cloudevents.Event {
	t.Helper()
	out := map[string]cloudevents.Event{}
	for _, r := range sqliteJSON(t, db, "SELECT id, type, event FROM events WHERE source = '"+source+"'") {
		var ev cloudevents.Event
		if err := json.Unmarshal([]byte(r["event"].(string)), &ev); err != nil {
			t.Fatalf("envelope is not a CloudEvent: %v\n%s", err, r["event"])
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("invalid CloudEvent %s: %v", ev.ID(), err)
		}
		if ev.ID() != r["id"] || ev.Type() != r["type"] {
			t.Fatalf("row %v disagrees with its envelope", r)
		}
		out[ev.ID()] = ev
	}
	return out
}

func wantEvents(t *testing.T, got map[string]cloudevents.Event, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events stored, want %d: %v", len(got), len(want), got)
	}
	for id, typ := range want {
		if ev, ok := got[id]; !ok || ev.Type() != typ {
			t.Fatalf("event %s: stored %v, want type %s", id, ev.Type(), typ)
		}
	}
}

func TestGenericProviders(t *testing.T) {
	hp, db := startGeneric(t,
		"SVIX_LIKE_SECRET="+svixSecret, "SVIX_LIKE_SECRET_PREVIOUS="+svixPrevious,
		"GITHUB_WEBHOOK_SECRET="+ghWebhookSecret, "GITHUB_WEBHOOK_SECRET_PREVIOUS="+ghWebhookPrevious,
		"STRIPE_WEBHOOK_SECRET="+stripeSecret, "STRIPE_WEBHOOK_SECRET_PREVIOUS="+stripePrevious,
	)

	t.Run("standard_webhooks", func(t *testing.T) {
		const path = "/webhooks/svix-like"
		body := `{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}`
		other := `{"type":"contact.deleted","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}`
		rotated := `{"type":"contact.updated","timestamp":"2022-11-04T08:00:00Z","data":{"id":"2"}}`
		now := time.Now()
		wrong := svixHeaders([]byte("not-the-secret-at-all-32-bytes!"), "msg_1", now, body)
		noSig := svixHeaders(svixKey, "msg_1", now, body)
		delete(noSig, "webhook-signature")
		noID := svixHeaders(svixKey, "msg_1", now, body)
		delete(noID, "webhook-id")
		send(t, hp, db, []delivery{
			{"signed", path, body, svixHeaders(svixKey, "msg_1", now, body), 200},
			{"wrong secret", path, body, wrong, 401},
			{"stale timestamp", path, body, svixHeaders(svixKey, "msg_1", now.Add(-10*time.Minute), body), 401},
			{"future timestamp", path, body, svixHeaders(svixKey, "msg_1", now.Add(10*time.Minute), body), 401},
			{"missing signature header", path, body, noSig, 401},
			{"missing id header", path, body, noID, 401},
			{"signature over another body", path, other, svixHeaders(svixKey, "msg_1", now, body), 401},
			{"rotated: previous secret", path, rotated, svixHeaders(svixPrevKey, "msg_2", now, rotated), 200},
			{"duplicate delivery, re-signed later", path, body, svixHeaders(svixKey, "msg_1", now.Add(time.Second), body), 200},
		})
		evs := storedEvents(t, db, path)
		wantEvents(t, evs, map[string]string{"msg_1": "org.svix_like.contact.created", "msg_2": "org.svix_like.contact.updated"})
		if ev := evs["msg_1"]; ev.Subject() != "1f81eb52-5198-4599-803e-771906343485" || !ev.Time().Equal(time.Date(2022, 11, 3, 20, 26, 10, 344522000, time.UTC)) {
			t.Fatalf("envelope %v", ev)
		}

		// A signed event of a type the sender does not document is kept as
		// a dead letter, not dropped.
		odd := `{"type":"contact.merged","timestamp":"2022-11-03T20:26:10Z","data":{"id":"3"}}`
		send(t, hp, db, []delivery{{"unknown type", path, odd, svixHeaders(svixKey, "msg_3", time.Now(), odd), 200}})
		if dl := sqliteJSON(t, db, "SELECT status FROM dead_letters WHERE key = 'svix_like:msg_3'"); len(dl) != 1 || dl[0]["status"] != "unknown_type" {
			t.Fatalf("dead letters: %v", dl)
		}
	})

	// GitHub signs no timestamp, so it has no replay window to test: its
	// retries and redeliveries collapse on X-GitHub-Delivery instead.
	t.Run("github", func(t *testing.T) {
		const path = "/webhooks/github"
		body := `{"action":"opened","number":2,"pull_request":{"id":1},"repository":{"full_name":"octocat/Hello-World"}}`
		push := `{"ref":"refs/heads/main","repository":{"full_name":"octocat/Hello-World"}}`
		noSig := githubHeaders(ghWebhookSecret, "d-1", "pull_request", body)
		delete(noSig, "X-Hub-Signature-256")
		noID := githubHeaders(ghWebhookSecret, "d-1", "pull_request", body)
		delete(noID, "X-GitHub-Delivery")
		send(t, hp, db, []delivery{
			{"signed", path, body, githubHeaders(ghWebhookSecret, "d-1", "pull_request", body), 200},
			{"wrong secret", path, body, githubHeaders("guess", "d-1", "pull_request", body), 401},
			{"missing signature header", path, body, noSig, 401},
			{"missing delivery header", path, body, noID, 401},
			{"signature over another body", path, push, githubHeaders(ghWebhookSecret, "d-1", "pull_request", body), 401},
			{"rotated: previous secret", path, push, githubHeaders(ghWebhookPrevious, "d-2", "push", push), 200},
			{"duplicate delivery", path, body, githubHeaders(ghWebhookSecret, "d-1", "pull_request", body), 200},
		})
		evs := storedEvents(t, db, path)
		wantEvents(t, evs, map[string]string{"d-1": "org.github.pull_request.opened", "d-2": "org.github.push"})
		if evs["d-1"].Subject() != "octocat/Hello-World" {
			t.Fatalf("envelope %v", evs["d-1"])
		}
	})

	t.Run("stripe", func(t *testing.T) {
		const path = "/webhooks/stripe"
		body := `{"id":"evt_1","object":"event","type":"invoice.paid","created":1686089970,"data":{"object":{"id":"in_1","object":"invoice"}}}`
		other := strings.Replace(body, "invoice.paid", "invoice.voided", 1)
		rotated := `{"id":"evt_2","object":"event","type":"customer.created","created":1686089971,"data":{"object":{"id":"cus_1","object":"customer"}}}`
		rolled := `{"id":"evt_3","object":"event","type":"customer.updated","created":1686089972,"data":{"object":{"id":"cus_1","object":"customer"}}}`
		now := time.Now()
		send(t, hp, db, []delivery{
			{"signed", path, body, stripeHeaders(now, stripeSig(stripeSecret, now, body)), 200},
			{"wrong secret", path, body, stripeHeaders(now, stripeSig("whsec_guess", now, body)), 401},
			{"stale timestamp", path, body, stripeHeaders(now.Add(-10*time.Minute), stripeSig(stripeSecret, now.Add(-10*time.Minute), body)), 401},
			{"future timestamp", path, body, stripeHeaders(now.Add(10*time.Minute), stripeSig(stripeSecret, now.Add(10*time.Minute), body)), 401},
			{"missing header", path, body, nil, 401},
			{"signature over another body", path, other, stripeHeaders(now, stripeSig(stripeSecret, now, body)), 401},
			{"rotated: previous secret", path, rotated, stripeHeaders(now, stripeSig(stripePrevious, now, rotated)), 200},
			{"rolling: one v1 per secret", path, rolled, stripeHeaders(now, stripeSig("whsec_retired", now, rolled), stripeSig(stripeSecret, now, rolled)), 200},
			{"duplicate delivery, re-signed later", path, body, stripeHeaders(now.Add(time.Second), stripeSig(stripeSecret, now.Add(time.Second), body)), 200},
		})
		evs := storedEvents(t, db, path)
		wantEvents(t, evs, map[string]string{"evt_1": "org.stripe.invoice.paid", "evt_2": "org.stripe.customer.created", "evt_3": "org.stripe.customer.updated"})
		if ev := evs["evt_1"]; ev.Subject() != "invoice/in_1" || !ev.Time().Equal(time.Unix(1686089970, 0)) {
			t.Fatalf("envelope %v", ev)
		}
	})

	if err := hp.Terminate(t, 20*time.Second); err != nil {
		t.Fatalf("hookpipe did not exit cleanly on SIGTERM: %v\n%s", err, harness.TailFile(hp.LogPath, 3000))
	}
}

// The same config with an ed25519 public key (whpk_...) instead of an HMAC
// secret: the standard_webhooks preset then checks v1a signatures.
func TestGenericStandardWebhooksEd25519(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	hp, db := startGeneric(t,
		"SVIX_LIKE_SECRET=whpk_"+base64.StdEncoding.EncodeToString(pub),
		"GITHUB_WEBHOOK_SECRET="+ghWebhookSecret, "STRIPE_WEBHOOK_SECRET="+stripeSecret,
	)
	sign := func(key ed25519.PrivateKey, id string, at time.Time, body string) map[string]string {
		ts := strconv.FormatInt(at.Unix(), 10)
		sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, []byte(id+"."+ts+"."+body)))
		return map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": "v1a," + sig}
	}
	const path = "/webhooks/svix-like"
	body := `{"type":"contact.created","timestamp":"2022-11-03T20:26:10Z","data":{"id":"1"}}`
	now := time.Now()
	send(t, hp, db, []delivery{
		{"signed", path, body, sign(priv, "msg_ed_1", now, body), 200},
		{"another key", path, body, sign(otherPriv, "msg_ed_1", now, body), 401},
		{"stale", path, body, sign(priv, "msg_ed_1", now.Add(-10*time.Minute), body), 401},
		{"future", path, body, sign(priv, "msg_ed_1", now.Add(10*time.Minute), body), 401},
		{"another body", path, strings.Replace(body, `"1"`, `"2"`, 1), sign(priv, "msg_ed_1", now, body), 401},
		{"HMAC signature", path, body, svixHeaders(svixKey, "msg_ed_1", now, body), 401},
	})
	wantEvents(t, storedEvents(t, db, path), map[string]string{"msg_ed_1": "org.svix_like.contact.created"})
}
