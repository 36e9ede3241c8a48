package thecity

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/auth"
	"github.com/hookpipe/hookpipe/plugins/event"
	"github.com/hookpipe/hookpipe/plugins/examples"
)

func newTestProcessor() *Processor {
	return &Processor{lenient: true, normalizeTimes: true, now: time.Now}
}

func TestCatalogHasEveryDocumentedSection(t *testing.T) {
	sections := map[string]bool{}
	for _, e := range Catalog {
		sections[e.Section] = true
	}
	if len(Catalog) != 21 || len(sections) != 21 {
		t.Fatalf("catalog has %d entries, %d sections; the document has 21", len(Catalog), len(sections))
	}
	for _, ex := range examples.Provider(examples.TheCity) {
		if !sections[ex.Section] {
			t.Errorf("no catalog entry for the documented section %s", ex.Section)
		}
	}
}

func TestEveryDocumentedExampleIsValid(t *testing.T) {
	p := newTestProcessor()
	for _, ex := range examples.Provider(examples.TheCity) {
		ev, doc, err := p.Parse(ex.Body, "2026-11-24T10:00:00Z")
		if err != nil || ev.Status != event.StatusValid {
			t.Errorf("%s: status %s, error %v %s", ex.Name, ev.Status, err, ev.Error)
			continue
		}
		if ev.Subject == "" || ev.ID == "" || !strings.HasSuffix(ev.Time, "Z") || doc == nil {
			t.Errorf("%s: %+v", ex.Name, ev)
		}
	}
	if _, _, err := (&Processor{now: time.Now}).Parse(mustExample(t, "checkins_check_out").Body, ""); err == nil {
		t.Error("the strict default accepted the non-JSON Checkins#check_out example")
	}
}

func mustExample(t *testing.T, name string) examples.Example {
	t.Helper()
	ex, ok := examples.Get(examples.TheCity, name)
	if !ok {
		t.Fatalf("no example %s", name)
	}
	return ex
}

func TestOlderObjectEventKeys(t *testing.T) {
	ev, _, err := newTestProcessor().Parse(mustExample(t, "addresses_update_user").Body, "")
	if err != nil || ev.Type != "address.update" || ev.Subject != "addresses/552561485" {
		t.Fatalf("%+v %v", ev, err)
	}
}

func TestIDsAndTimes(t *testing.T) {
	p := newTestProcessor()
	ev, _, _ := p.Parse(mustExample(t, "roles_update").Body, "")
	if ev.ID != "67b2e34d7eac2b2cd8eb18d1d4824f0eb86ed3b0" || ev.Time != "2014-01-30T19:02:59Z" {
		t.Errorf("webhook_id and webhook_timestamp: %+v", ev)
	}
	ev, _, _ = p.Parse(mustExample(t, "duplicates_merge").Body, "")
	if ev.Time != "2013-04-17T20:08:58Z" {
		t.Errorf("webhook_event_occurred_at: %s", ev.Time)
	}
	users := mustExample(t, "users_update").Body
	ev, doc, _ := p.Parse(users, "")
	if ev.ID != event.BodyID("thecity", users) || ev.Time != "2012-08-09T06:27:00Z" {
		t.Errorf("body hash id and updated_at: %+v", ev)
	}
	if doc["created_at"] != "2012-08-08T21:17:00Z" || doc["member_since"] != "2012-08-08" || doc["birthdate"] != "1974-11-09" {
		t.Errorf("normalized times: %v %v %v", doc["created_at"], doc["member_since"], doc["birthdate"])
	}
	ev, _, _ = p.Parse(mustExample(t, "addresses_destroy").Body, "2026-11-24T10:00:00.5Z")
	if ev.Time != "2026-11-24T10:00:00.5Z" {
		t.Errorf("no time in the payload: want the receive time, got %s", ev.Time)
	}
	checkout, _, _ := p.Parse(mustExample(t, "checkins_check_out").Body, "")
	_, doc, _ = p.Parse(mustExample(t, "checkins_check_out").Body, "")
	changed := doc["changed"].(map[string]any)["checked_out_at"].([]any)
	if changed[1] != "2012-09-27T20:41:16Z" || checkout.Time != "2012-09-27T20:41:00Z" {
		t.Errorf("changed times %v, event time %s", changed, checkout.Time)
	}
}

func TestPrivilegeSubject(t *testing.T) {
	ev, _, _ := newTestProcessor().Parse(mustExample(t, "privileges_create").Body, "")
	if ev.Subject != "users/23838500/privileges" || ev.Type != "privilege.create" {
		t.Fatalf("%+v", ev)
	}
}

func TestUnknownInvalidStrict(t *testing.T) {
	p := newTestProcessor()
	ev, _, err := p.Parse([]byte(`{"webhook_object":"Donation","webhook_event":"create","id":1}`), "")
	if err != nil || ev.Status != event.StatusUnknownType {
		t.Errorf("%+v %v", ev, err)
	}
	ev, _, err = p.Parse([]byte(`{"webhook_object":"Group","webhook_event":"update","id":1}`), "")
	if err != nil || ev.Status != event.StatusInvalid || !strings.Contains(ev.Error, "changed") {
		t.Errorf("%+v %v", ev, err)
	}
	p.strict = true
	if _, _, err := p.Parse([]byte(`{"webhook_object":"Donation","webhook_event":"create","id":1}`), ""); err == nil {
		t.Error("strict accepted an unknown Object#event")
	}
	if _, _, err := p.Parse([]byte(`{"id":1}`), ""); err == nil {
		t.Error("accepted a payload without object/event")
	}
}

func TestVerifyFromMetadata(t *testing.T) {
	sig, err := auth.NewCitySignature("", auth.ModeHMACSHA256, "hex", []string{"new-key", "old-key"})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestProcessor()
	p.verifier, p.signatureKey = sig, "x-city-webhook-signature"
	body := mustExample(t, "users_destroy").Body
	run := func(content []byte, signature string) (*service.Message, error) {
		msg := service.NewMessage(content)
		if signature != "" {
			msg.MetaSetMut("x-city-webhook-signature", signature)
		}
		_, err := p.Process(context.Background(), msg)
		return msg, err
	}
	if _, err := run(body, sig.Encode(sig.Sign([]byte("old-key"), body))); err != nil {
		t.Errorf("rotated secret refused: %v", err)
	}
	tampered := []byte(strings.Replace(string(body), "Timmy", "Tommy", 1))
	msg, err := run(tampered, sig.Encode(sig.Sign([]byte("new-key"), body)))
	if status, _ := msg.MetaGet(event.MetaStatus); err == nil || status != event.StatusUnauthenticated {
		t.Errorf("tampered body: err %v, status %s", err, status)
	}
	if _, err := run(body, ""); err == nil {
		t.Error("missing signature accepted")
	}
}

func BenchmarkParseUsersUpdate(b *testing.B) {
	ex, _ := examples.Get(examples.TheCity, "users_update")
	p := newTestProcessor()
	b.ReportAllocs()
	b.SetBytes(int64(len(ex.Body)))
	for b.Loop() {
		if _, _, err := p.Parse(ex.Body, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, ex := range examples.Provider(examples.TheCity) {
		f.Add(ex.Body)
	}
	p := newTestProcessor()
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, doc, err := p.Parse(body, "")
		if err != nil {
			if ev.Status != event.StatusMalformed || doc != nil {
				t.Fatalf("error %v with status %q", err, ev.Status)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" || ev.Time == "" || doc == nil {
			t.Fatalf("accepted without id, type or time: %+v", ev)
		}
	})
}
