package webhook_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/plugins/archive"
)

const archiveConf = `    archive:
      archive_sink: {}
    archive_seal_keys: [ "seal-key" ]
    rejected_archive:
      rejected_sink: {}
    rejected_body_max_bytes: 16
    metadata_headers: [ User-Agent ]`

func TestArchiveBeforeThePipeline(t *testing.T) {
	base, got := startStream(t, archiveConf, "")

	status, _, _ := do(t, base, call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword,
		header: map[string]string{"User-Agent": "ControlShift"}})
	if status != 200 || got.count() != 1 || archived.count() != 1 {
		t.Fatalf("status %d, %d written, %d archived", status, got.count(), archived.count())
	}
	var rec archive.Record
	raw, _ := archived.msgs[0].AsBytes()
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Body != validCSBody || rec.Provider != "controlshift" || rec.Endpoint != "/webhooks/controlshift" || rec.RequestID == "" {
		t.Errorf("record %+v", rec)
	}
	if err := rec.VerifySeal([][]byte{[]byte("seal-key")}); err != nil {
		t.Errorf("seal: %v", err)
	}
	if _, ok := rec.Headers["Authorization"]; ok || rec.Headers["User-Agent"] != "ControlShift" {
		t.Errorf("headers %v: basic auth credentials must never be archived", rec.Headers)
	}
	if p, _ := archived.msgs[0].MetaGet("webhook_provider"); p != "controlshift" {
		t.Errorf("archive message metadata webhook_provider %q", p)
	}

	// The City in shared mode: the header is the secret, never archived. In
	// HMAC mode the signature is kept for re-verification.
	do(t, base, call{path: "/webhooks/thecity", body: validCityDoc, header: map[string]string{"X-City-Webhook-Signature": citySecret}})
	do(t, base, call{path: "/webhooks/thecity-hmac", body: validCityDoc, header: map[string]string{"X-City-Webhook-Signature": hmacHex(cityHMACKey, validCityDoc)}})
	for _, m := range archived.msgs[1:] {
		raw, _ := m.AsBytes()
		if strings.Contains(string(raw), citySecret) {
			t.Errorf("the shared City secret reached the archive: %s", raw)
		}
	}
	if !strings.Contains(string(mustBytes(t, archived.msgs[2])), hmacHex(cityHMACKey, validCityDoc)) {
		t.Error("the HMAC signature was not archived")
	}
}

func mustBytes(t *testing.T, m interface{ AsBytes() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestArchiveFailureAnswers503AndWritesNothing(t *testing.T) {
	base, got := startStream(t, archiveConf, "")
	status, _, _ := do(t, base, call{path: "/webhooks/controlshift", body: `{"type":"ARCHIVEFAIL","data":{}}`, user: "controlshift", pass: csPassword})
	if status != 503 || got.count() != 0 {
		t.Fatalf("archive write failed: status %d, %d written to the sink", status, got.count())
	}
	if status, _, _ := do(t, base, call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: csPassword}); status != 200 {
		t.Fatalf("next request: %d", status)
	}
}

func TestRejectedRequestsArchivedWithoutSecrets(t *testing.T) {
	base, got := startStream(t, archiveConf, "")
	do(t, base, call{path: "/webhooks/controlshift", body: validCSBody, user: "controlshift", pass: "wrong-password"})
	do(t, base, call{path: "/webhooks/thecity", body: validCityDoc, header: map[string]string{"X-City-Webhook-Signature": "wrong-city-value"}})
	do(t, base, call{path: "/webhooks/controlshift", body: `{"type":`, user: "controlshift", pass: csPassword})
	deadline := time.Now().Add(3 * time.Second)
	for rejectedArchived.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rejectedArchived.count() != 3 || got.count() != 0 || archived.count() != 0 {
		t.Fatalf("%d rejected records, %d written, %d archived as accepted", rejectedArchived.count(), got.count(), archived.count())
	}
	statuses := map[float64]int{}
	for _, m := range rejectedArchived.msgs {
		raw := mustBytes(t, m)
		for _, secret := range []string{"wrong-password", "wrong-city-value", csPassword} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("a rejected record holds a credential: %s", raw)
			}
		}
		var rec map[string]any
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatal(err)
		}
		statuses[rec["status"].(float64)]++
		if len(rec["body"].(string)) > 16 {
			t.Errorf("body kept beyond rejected_body_max_bytes: %q", rec["body"])
		}
	}
	if statuses[401] != 2 || statuses[400] != 1 {
		t.Errorf("statuses %v", statuses)
	}
}
