//go:build integration

// Package acceptance runs the built hookpipe binary with the ready configs and
// checks, through independent clients, what reaches each sink.
package acceptance

import (
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/tests/harness"
)

const (
	csPassword = "acceptance-cs-password"
	citySecret = "acceptance-city-secret"
)

// providerAuth returns the path and headers that authenticate an example
// the way its provider does.
func providerAuth(e examples.Example) (string, map[string]string) {
	if e.Provider == examples.ControlShift {
		return "/webhooks/controlshift", map[string]string{"Authorization": basicAuth("controlshift", csPassword)}
	}
	return "/webhooks/thecity", map[string]string{"X-City-Webhook-Signature": citySecret}
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// expectedType is the CloudEvents type of a documented example, derived
// from the document's own section name.
func expectedType(e examples.Example) string {
	if e.Provider == examples.ControlShift {
		return "org.controlshift." + e.Section
	}
	object, action, _ := strings.Cut(e.Section, "#")
	singular := map[string]string{"Addresses": "address", "Checkins": "checkin", "Duplicates": "duplicate", "Groups": "group",
		"GroupTags": "grouptag", "Invitations": "invitation", "Privileges": "privilege", "Roles": "role", "Users": "user"}[object]
	return "org.thecity." + singular + "." + action
}

func sqliteJSON(t *testing.T, db, query string) []map[string]any {
	t.Helper()
	out, err := exec.Command("sqlite3", "-cmd", ".timeout 10000", "-json", db, query).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", query, err, out)
	}
	var rows []map[string]any
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("sqlite3 output: %v\n%s", err, out)
	}
	return rows
}

func count(t *testing.T, db, table string) int {
	t.Helper()
	rows := sqliteJSON(t, db, "SELECT count(*) AS n FROM "+table)
	n, _ := rows[0]["n"].(float64)
	return int(n)
}

func TestQuickstartEveryExample(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("the sqlite3 CLI is needed to read the sink back independently (apt-get install sqlite3)")
	}
	db := filepath.Join(t.TempDir(), "hookpipe.db")
	hp := harness.StartHookpipe(t, "configs/quickstart.yaml",
		"HOOKPIPE_SQLITE_DSN=file:"+db,
		"CONTROLSHIFT_PASSWORD="+csPassword,
		"THECITY_SECRET="+citySecret,
	)

	all := examples.All()
	if len(all) != 45 {
		t.Fatalf("%d examples, want 45", len(all))
	}
	wantTypes := map[string]string{}
	for _, e := range all {
		path, hdr := providerAuth(e)
		status, body := hp.Post(t, path, e.Body, hdr)
		if status != 200 {
			t.Fatalf("%s/%s: status %d %s\n%s", e.Provider, e.Name, status, body, harness.TailFile(hp.LogPath, 3000))
		}
		wantTypes[expectedType(e)] = e.Name
	}

	// Read back with the sqlite3 CLI and validate each envelope with the
	// CloudEvents SDK.
	rows := sqliteJSON(t, db, "SELECT id, type, subject, time, event FROM events ORDER BY id")
	if len(rows) != 45 {
		t.Fatalf("%d rows in events, want 45 (one per documented example)", len(rows))
	}
	gotTypes := map[string]bool{}
	for _, r := range rows {
		var ev cloudevents.Event
		if err := json.Unmarshal([]byte(r["event"].(string)), &ev); err != nil {
			t.Fatalf("envelope is not a CloudEvent: %v\n%s", err, r["event"])
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("invalid CloudEvent %s: %v", ev.ID(), err)
		}
		if ev.ID() != r["id"] || ev.Type() != r["type"] || ev.Subject() != r["subject"] {
			t.Errorf("row columns %v disagree with the envelope %s/%s/%s", r, ev.ID(), ev.Type(), ev.Subject())
		}
		if ev.Subject() == "" || ev.Time().IsZero() || ev.DataContentType() != "application/json" || len(ev.Data()) == 0 {
			t.Errorf("envelope %s lacks subject, time, content type or data", ev.ID())
		}
		if _, err := time.Parse(time.RFC3339Nano, r["time"].(string)); err != nil || !strings.HasSuffix(r["time"].(string), "Z") {
			t.Errorf("time %v is not RFC 3339 UTC", r["time"])
		}
		gotTypes[ev.Type()] = true
	}
	for typ, name := range wantTypes {
		if !gotTypes[typ] {
			t.Errorf("no event of type %s (example %s)", typ, name)
		}
	}

	// A retry of a delivery is stored once.
	for _, e := range all[:3] {
		path, hdr := providerAuth(e)
		if status, body := hp.Post(t, path, e.Body, hdr); status != 200 {
			t.Fatalf("retry: status %d %s", status, body)
		}
	}
	if n := count(t, db, "events"); n != 45 {
		t.Fatalf("%d events after retries, want 45", n)
	}

	// Bad input gets its status and writes nothing anywhere.
	cs := examples.Provider(examples.ControlShift)[0].Body
	city := examples.Provider(examples.TheCity)[0].Body
	big := []byte(`{"type":"signature.created","data":{"pad":"` + strings.Repeat("x", 2<<20) + `"},"jid":"big"}`)
	for _, c := range []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
		status int
	}{
		{"wrong password", "/webhooks/controlshift", cs, map[string]string{"Authorization": basicAuth("controlshift", "nope")}, 401},
		{"no credentials", "/webhooks/controlshift", cs, nil, 401},
		{"wrong City signature", "/webhooks/thecity", city, map[string]string{"X-City-Webhook-Signature": "nope"}, 401},
		{"malformed JSON", "/webhooks/controlshift", []byte(`{"type":`), map[string]string{"Authorization": basicAuth("controlshift", csPassword)}, 400},
		{"not an object", "/webhooks/thecity", []byte(`[]`), map[string]string{"X-City-Webhook-Signature": citySecret}, 400},
		{"too large", "/webhooks/controlshift", big, map[string]string{"Authorization": basicAuth("controlshift", csPassword)}, 413},
		{"not JSON content", "/webhooks/controlshift", cs, map[string]string{"Authorization": basicAuth("controlshift", csPassword), "Content-Type": "text/csv"}, 415},
		{"unknown path", "/webhooks/stripe", cs, nil, 404},
	} {
		status, body := hp.Post(t, c.path, c.body, c.header)
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, status, c.status, body)
		}
		if strings.Contains(body, csPassword) || strings.Contains(body, citySecret) {
			t.Errorf("%s: reply leaks a secret: %s", c.name, body)
		}
	}
	if n, d := count(t, db, "events"), count(t, db, "dead_letters"); n != 45 || d != 0 {
		t.Fatalf("after bad input: %d events, %d dead letters; want 45 and 0", n, d)
	}

	// Unknown and invalid events are acknowledged into the dead-letter table.
	auth := map[string]string{"Authorization": basicAuth("controlshift", csPassword)}
	for i, body := range []string{
		`{"type":"petition.exploded","data":{"slug":"x"},"jid":"dl-1"}`,
		`{"type":"signature.created","data":{"id":1},"jid":"dl-2"}`,
	} {
		if status, reply := hp.Post(t, "/webhooks/controlshift", []byte(body), auth); status != 200 {
			t.Fatalf("dead letter %d: status %d %s", i, status, reply)
		}
	}
	dl := sqliteJSON(t, db, "SELECT status, error FROM dead_letters ORDER BY status DESC")
	if len(dl) != 2 || dl[0]["status"] != "unknown_type" || dl[1]["status"] != "invalid" {
		t.Fatalf("dead letters: %v", dl)
	}
	if n := count(t, db, "events"); n != 45 {
		t.Fatalf("dead letters reached the events table: %d rows", n)
	}

	if err := hp.Terminate(t, 20*time.Second); err != nil {
		t.Fatalf("hookpipe did not exit cleanly on SIGTERM: %v\n%s", err, harness.TailFile(hp.LogPath, 3000))
	}
}
