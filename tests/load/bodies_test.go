package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/plugins/event"
	"github.com/hookpipe/hookpipe/plugins/examples"
)

func TestBodyMixSharesAndIDs(t *testing.T) {
	m, err := newBodyMix(newCredentials(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.templates) != len(examples.All()) {
		t.Fatalf("%d templates for %d examples", len(m.templates), len(examples.All()))
	}
	if len(m.schedule) != scheduleLen {
		t.Fatalf("schedule has %d slots", len(m.schedule))
	}
	perName := map[string]int{}
	for _, idx := range m.schedule {
		tp := m.templates[idx]
		perName[tp.provider+"/"+tp.name]++
	}
	if got := perName["controlshift/signature.created"]; got != 600 {
		t.Errorf("signature.created has %d of 1000 slots, want 600", got)
	}
	city := 0
	for name, n := range perName {
		if strings.HasPrefix(name, "thecity/") {
			city += n
		}
		if n == 0 {
			t.Errorf("%s is never sent", name)
		}
	}
	if city != 200 {
		t.Errorf("The City has %d of 1000 slots, want 200", city)
	}
	if len(perName) != len(m.templates) {
		t.Errorf("%d of %d examples are in the schedule", len(perName), len(m.templates))
	}

	// Two full rounds of the schedule: every body decodes (leniently for
	// The City's documented non-strict examples) and carries its own id.
	seen := map[string]bool{}
	for n := range uint64(2 * scheduleLen) {
		tp, body := m.body(n)
		doc, err := event.Decode(body, tp.provider == examples.TheCity)
		if err != nil {
			t.Fatalf("request %d (%s/%s) does not decode: %v\n%s", n, tp.provider, tp.name, err, body)
		}
		key := "jid"
		if tp.provider == examples.TheCity {
			key = "webhook_id"
		}
		id, _ := doc[key].(string)
		if len(id) != tp.idLen || !strings.HasPrefix(id, string(m.runPrefix[:])) {
			t.Fatalf("request %d: %s = %q, want %d hex digits starting with the run prefix", n, key, id, tp.idLen)
		}
		if seen[id] {
			t.Fatalf("request %d repeats id %s", n, id)
		}
		seen[id] = true
		// The template itself is never written to.
		if !bytes.Contains(tp.body, bytes.Repeat([]byte("0"), tp.idLen)) {
			t.Fatalf("template %s/%s lost its placeholder", tp.provider, tp.name)
		}
	}
}

func TestTemplateKeepsTheRestOfTheExample(t *testing.T) {
	for _, e := range examples.All() {
		tp, err := prepareTemplate(e)
		if err != nil {
			t.Fatalf("%s/%s: %v", e.Provider, e.Name, err)
		}
		if e.Provider == examples.ControlShift {
			// Only the jid's value changed, and it has the same width.
			if len(tp.body) != len(e.Body) {
				t.Errorf("%s: %d bytes, the example has %d", e.Name, len(tp.body), len(e.Body))
			}
			var orig, got map[string]any
			if err := json.Unmarshal(e.Body, &orig); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(tp.body, &got); err != nil {
				t.Fatalf("%s: %v", e.Name, err)
			}
			delete(orig, "jid")
			delete(got, "jid")
			a, _ := json.Marshal(orig)
			b, _ := json.Marshal(got)
			if !bytes.Equal(a, b) {
				t.Errorf("%s: payload changed beyond the jid", e.Name)
			}
			continue
		}
		// The City: the example's bytes are still there around the id.
		rest := tp.body[:tp.idOff]
		rest = append(append([]byte{}, rest...), tp.body[tp.idOff+tp.idLen:]...)
		if !strings.Contains(string(e.Body), `"webhook_id"`) {
			want := append([]byte{'{'}, []byte(`"webhook_id":"",`)...)
			if !bytes.HasPrefix(bytes.TrimLeft(rest, " \n"), want) {
				t.Errorf("%s: webhook_id not inserted first: %.60s", e.Name, rest)
			}
		}
	}
}

func TestCitySignature(t *testing.T) {
	cred := newCredentials()
	shared, err := newBodyMix(cred, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := shared.citySignature([]byte("{}")); got != cred.citySecret {
		t.Errorf("shared mode sends %q, want the secret", got)
	}
	signed, err := newBodyMix(cred, true)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"webhook_object":"User"}`)
	mac := hmac.New(sha256.New, []byte(cred.citySecret))
	mac.Write(body)
	if got, want := signed.citySignature(body), hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("hmac mode sends %q, want %q", got, want)
	}
}
