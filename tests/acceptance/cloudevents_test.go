//go:build integration

package acceptance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/hookpipe/hookpipe/tests/harness"
)

const cePassword = "acceptance-ce-password"

// ceID is the envelope id the config must give an event: the first 16 bytes
// of SHA-256 over "cloudevents", source and id joined by NUL bytes, computed
// here independently of hookpipe's code.
func ceID(source, id string) string {
	sum := sha256.Sum256([]byte("cloudevents\x00" + source + "\x00" + id))
	return hex.EncodeToString(sum[:16])
}

// configs/cloudevents.yaml end to end: the CloudEvents SDK sends events in
// both modes, the handshake is answered as configured, and what lands in
// SQLite (read with the sqlite3 CLI) is one valid CloudEvent per event,
// whatever the mode and however often it was sent.
func TestCloudEventsConfig(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("the sqlite3 CLI is needed to read the sink back independently (apt-get install sqlite3)")
	}
	db := filepath.Join(t.TempDir(), "cloudevents.db")
	hp := harness.StartHookpipe(t, "configs/cloudevents.yaml",
		"HOOKPIPE_SQLITE_DSN=file:"+db,
		"CLOUDEVENTS_PASSWORD="+cePassword,
		"CLOUDEVENTS_ALLOWED_ORIGIN=events.example.com",
		"CLOUDEVENTS_ALLOWED_RATE=600",
	)

	// The abuse-protection handshake.
	for _, c := range []struct {
		origin, rate         string
		status               int
		allowedOrigin, grant string
	}{
		{"events.example.com", "100", 200, "events.example.com", "100"},
		{"events.example.com", "", 200, "events.example.com", "600"},
		{"elsewhere.example.net", "100", 403, "", ""},
	} {
		req, _ := http.NewRequest(http.MethodOptions, hp.URL+"/events", nil)
		req.Header.Set("WebHook-Request-Origin", c.origin)
		if c.rate != "" {
			req.Header.Set("WebHook-Request-Rate", c.rate)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.status || res.Header.Get("WebHook-Allowed-Origin") != c.allowedOrigin || res.Header.Get("WebHook-Allowed-Rate") != c.grant {
			t.Errorf("handshake of %s: %d origin %q rate %q", c.origin, res.StatusCode, res.Header.Get("WebHook-Allowed-Origin"), res.Header.Get("WebHook-Allowed-Rate"))
		}
	}

	client := func(password string) cloudevents.Client {
		p, err := cehttp.New(cehttp.WithTarget(hp.URL+"/events"), cehttp.WithHeader("Authorization", basicAuth("cloudevents", password)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := cloudevents.NewClient(p)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sender := client(cePassword)
	send := func(ctx context.Context, c cloudevents.Client, ev cloudevents.Event) int {
		res := c.Send(ctx, ev)
		var httpRes *cehttp.Result
		if !errors.As(res, &httpRes) {
			t.Fatalf("no HTTP result: %v", res)
		}
		return httpRes.StatusCode
	}
	binary := cloudevents.WithEncodingBinary(context.Background())
	structured := cloudevents.WithEncodingStructured(context.Background())

	sentEvents := map[string]cloudevents.Event{}
	for i := range 20 {
		ev := cloudevents.NewEvent()
		ev.SetID(fmt.Sprintf("reading-%03d", i))
		ev.SetSource(fmt.Sprintf("urn:sensor:%d", i%4))
		ev.SetType("com.example.sensor.reading")
		ev.SetSubject(fmt.Sprintf("rooms/%d", i%3))
		ev.SetTime(time.Date(2026, 11, 24, 10, i, 0, 0, time.UTC))
		ev.SetExtension("site", "north")
		if err := ev.SetData(cloudevents.ApplicationJSON, map[string]any{"celsius": 20 + i, "ok": true}); err != nil {
			t.Fatal(err)
		}
		ctx := binary
		if i%2 == 1 {
			ctx = structured
		}
		if s := send(ctx, sender, ev); s != 200 {
			t.Fatalf("event %d: status %d\n%s", i, s, harness.TailFile(hp.LogPath, 3000))
		}
		sentEvents[ceID(ev.Source(), ev.ID())] = ev
	}
	// Retries, in the other mode: no new rows.
	for i := range 4 {
		ev := sentEvents[ceID(fmt.Sprintf("urn:sensor:%d", i%4), fmt.Sprintf("reading-%03d", i))]
		ctx := structured
		if i%2 == 1 {
			ctx = binary
		}
		if s := send(ctx, sender, ev); s != 200 {
			t.Fatalf("retry %d: status %d", i, s)
		}
	}
	// Wrong credentials are refused; the SDK sees a NACK.
	bad := cloudevents.NewEvent()
	bad.SetID("x")
	bad.SetSource("urn:x")
	bad.SetType("x")
	if res := client("wrong").Send(binary, bad); cloudevents.IsACK(res) {
		t.Error("wrong password acknowledged")
	}
	// An event without a type is no CloudEvent: acknowledged into the dead letters.
	req, _ := http.NewRequest(http.MethodPost, hp.URL+"/events", strings.NewReader(`{"specversion":"1.0","id":"no-type","source":"urn:x","data":{}}`))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", basicAuth("cloudevents", cePassword))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("invalid event: %d", res.StatusCode)
	}

	rows := sqliteJSON(t, db, "SELECT id, type, source, subject, event FROM events ORDER BY id")
	if len(rows) != len(sentEvents) {
		t.Fatalf("%d rows, want %d (one per event, retries collapsed)", len(rows), len(sentEvents))
	}
	for _, r := range rows {
		var stored cloudevents.Event
		if err := json.Unmarshal([]byte(r["event"].(string)), &stored); err != nil {
			t.Fatalf("not a CloudEvent: %v\n%s", err, r["event"])
		}
		if err := stored.Validate(); err != nil {
			t.Errorf("invalid CloudEvent %s: %v", stored.ID(), err)
		}
		sent, ok := sentEvents[stored.ID()]
		if !ok {
			t.Errorf("stored id %s is not the hash of a sent event's source and id", stored.ID())
			continue
		}
		ext := stored.Extensions()
		if ext["deliveryid"] != sent.ID() || stored.Source() != sent.Source() || stored.Type() != sent.Type() ||
			stored.Subject() != sent.Subject() || !stored.Time().Equal(sent.Time()) || ext["site"] != "north" ||
			ext["provider"] != "cloudevents" || ext["receivedat"] == nil {
			t.Errorf("stored %s\nsent %s", stored, sent)
		}
		var got, want map[string]any
		_ = json.Unmarshal(stored.Data(), &got)
		_ = json.Unmarshal(sent.Data(), &want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("data %v, sent %v", got, want)
		}
		if r["id"] != stored.ID() || r["type"] != stored.Type() || r["source"] != stored.Source() || r["subject"] != stored.Subject() {
			t.Errorf("row %v disagrees with its envelope", r)
		}
	}
	dead := sqliteJSON(t, db, "SELECT status, error FROM dead_letters")
	if len(dead) != 1 || dead[0]["status"] != "invalid" || !strings.Contains(dead[0]["error"].(string), "type is missing") {
		t.Errorf("dead letters %v, want the event without a type", dead)
	}
}
