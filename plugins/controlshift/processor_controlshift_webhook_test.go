package controlshift

import (
	"strings"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/plugins/event"
	"github.com/hookpipe/hookpipe/plugins/examples"
)

// The event summary table of ControlShift's webhook document.
var documentedTypes = []string{
	"blast_email.created", "category.created", "category.updated", "data.full_table_exported",
	"data.incremental_table_exported", "event.created", "event.updated", "flag.created",
	"local_chapter.last_organiser.deleted", "local_chapter.organiser_request.created",
	"member.deleted.resources_transferred", "petition.flagged", "petition.inappropriate.creator_message",
	"petition.launched", "petition.launched.ham", "petition.reactivated", "petition.updated", "petition.edited",
	"signature.created", "unsubscribe.created", "locale.created", "forum.message.requires_moderation",
}

func newTestProcessor() *Processor {
	return &Processor{normalizeTimes: true, now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
}

func TestCatalogIsTheDocumentedList(t *testing.T) {
	if len(Catalog) != len(documentedTypes) {
		t.Fatalf("catalog has %d types, the document %d", len(Catalog), len(documentedTypes))
	}
	for _, typ := range documentedTypes {
		e, ok := Catalog[typ]
		if !ok {
			t.Errorf("catalog lacks %s", typ)
			continue
		}
		if e.Resource+"."+e.Action != typ || len(e.Required) == 0 || e.SubjectPrefix == "" {
			t.Errorf("%s: incomplete entry %+v", typ, e)
		}
	}
}

func TestEveryDocumentedExampleIsValid(t *testing.T) {
	p := newTestProcessor()
	ids := map[string]string{}
	for _, ex := range examples.Provider(examples.ControlShift) {
		ev, doc, err := p.Parse(ex.Body, "2026-11-24T10:00:00Z")
		if err != nil || ev.Status != event.StatusValid {
			t.Errorf("%s: status %s, error %v %s", ex.Name, ev.Status, err, ev.Error)
			continue
		}
		if ev.Type != ex.Section || ev.Subject == "" || ev.Time == "" || doc == nil {
			t.Errorf("%s: %+v", ex.Name, ev)
		}
		if other, dup := ids[ev.ID]; dup {
			t.Errorf("%s and %s share the id %s", ex.Name, other, ev.ID)
		}
		ids[ev.ID] = ex.Name
	}
	if len(ids) != 22 {
		t.Fatalf("%d distinct ids from 22 examples", len(ids))
	}
}

func TestIDs(t *testing.T) {
	p := newTestProcessor()
	parse := func(body string) event.Event {
		ev, _, err := p.Parse([]byte(body), "")
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	a := parse(`{"type":"event.created","data":{"slug":"a"},"jid":"J"}`)
	retry := parse(`{"type":"event.created", "data":{"slug":"a"},"jid":"J"}`)
	otherType := parse(`{"type":"event.updated","data":{"slug":"a"},"jid":"J"}`)
	if a.ID != retry.ID {
		t.Error("a retry with the same jid got another id")
	}
	if a.ID == otherType.ID {
		t.Error("two event types sharing a jid collapsed to one id")
	}
	if a.ID != event.HashID("controlshift", "event.created", "J") || a.DeliveryID != "J" {
		t.Errorf("id %s / delivery %s", a.ID, a.DeliveryID)
	}
	noJid := parse(`{"type":"event.created","data":{"slug":"a"}}`)
	noJid2 := parse(`{"type":"event.created","data":{"slug":"b"}}`)
	if noJid.ID == noJid2.ID || noJid.ID != event.BodyID("controlshift", []byte(`{"type":"event.created","data":{"slug":"a"}}`)) {
		t.Error("without a jid the id must be the hash of the raw body")
	}
}

func TestBulkDataURLIsUnescaped(t *testing.T) {
	ex, _ := examples.Get(examples.ControlShift, "data.full_table_exported")
	_, doc, err := newTestProcessor().Parse(ex.Body, "")
	if err != nil {
		t.Fatal(err)
	}
	url := doc["data"].(map[string]any)["url"].(string)
	if strings.Contains(url, "&amp;") || !strings.Contains(url, "?AWSAccessKeyId=XXX&Expires=1438711490&Signature=ABCDE%3D") {
		t.Fatalf("url %q", url)
	}
}

func TestTimesAndNestedSlugs(t *testing.T) {
	ex, _ := examples.Get(examples.ControlShift, "signature.created")
	body := strings.Replace(string(ex.Body), `"slug": "don-t-destroy-our-park"`, `"slug": "don-t-destroy-our-park", "partnership": {"slug": "friends"}, "effort": {"slug": "save-parks"}`, 1)
	ev, doc, err := newTestProcessor().Parse([]byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	data := doc["data"].(map[string]any)
	if data["created_at"] != "2015-08-03T17:30:01Z" || ev.Time != "2015-08-03T17:30:01Z" {
		t.Errorf("created_at %v, time %s", data["created_at"], ev.Time)
	}
	pet := data["petition"].(map[string]any)
	if event.Lookup(pet, "partnership.slug") != "friends" || event.Lookup(pet, "effort.slug") != "save-parks" {
		t.Errorf("nested slugs lost: %v", pet)
	}
	p := newTestProcessor()
	p.normalizeTimes = false
	_, doc, _ = p.Parse(ex.Body, "")
	if doc["data"].(map[string]any)["created_at"] != "2015-08-03T13:30:01-04:00" {
		t.Error("normalize_times: false still rewrote a timestamp")
	}
}

func TestUnknownAndInvalid(t *testing.T) {
	p := newTestProcessor()
	ev, doc, err := p.Parse([]byte(`{"type":"petition.exploded","data":{},"jid":"x"}`), "2026-11-24T10:00:00Z")
	if err != nil || ev.Status != event.StatusUnknownType || doc == nil || ev.Time != "2026-11-24T10:00:00Z" {
		t.Errorf("unknown: %+v %v", ev, err)
	}
	ev, _, err = p.Parse([]byte(`{"type":"data.full_table_exported","data":{"table":"x"},"jid":"x"}`), "")
	if err != nil || ev.Status != event.StatusInvalid || !strings.Contains(ev.Error, "url") {
		t.Errorf("invalid: %+v %v", ev, err)
	}
	if ev.Time != "2026-01-02T03:04:05Z" {
		t.Errorf("time without receive time %q, want now", ev.Time)
	}
	p.strict = true
	if _, _, err := p.Parse([]byte(`{"type":"petition.exploded","data":{}}`), ""); err == nil {
		t.Error("strict mode accepted an unknown type")
	}
	if _, _, err := p.Parse([]byte(`{"type":"event.created","data":{}}`), ""); err == nil {
		t.Error("strict mode accepted a missing field")
	}
}

func TestMalformed(t *testing.T) {
	p := newTestProcessor()
	for _, body := range []string{`{`, `[]`, `"x"`, `{"data":{}}`, `{"type":"event.created"}`, `{"type":"event.created","data":[]}`, `{"type":"a"} {"type":"b"}`, `{"type":"event.created","data":{"slug":nil}}`} {
		ev, doc, err := p.Parse([]byte(body), "")
		if err == nil || ev.Status != event.StatusMalformed || doc != nil {
			t.Errorf("%s: status %s, err %v", body, ev.Status, err)
		}
	}
	p.lenient = true
	if ev, _, err := p.Parse([]byte(`{"type":"event.created","data":{"slug":"a","x":nil,},}`), ""); err != nil || ev.Status != event.StatusValid {
		t.Errorf("lenient: %+v %v", ev, err)
	}
}

func TestHugeNumbersStayExact(t *testing.T) {
	_, doc, err := newTestProcessor().Parse([]byte(`{"type":"blast_email.created","data":{"id":123456789012345678901234567890,"subject":"s"}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := event.String(doc["data"].(map[string]any)["id"]); got != "123456789012345678901234567890" {
		t.Fatalf("id became %s", got)
	}
}

func BenchmarkParseSignatureCreated(b *testing.B) {
	ex, _ := examples.Get(examples.ControlShift, "signature.created")
	p := newTestProcessor()
	b.ReportAllocs()
	b.SetBytes(int64(len(ex.Body)))
	for b.Loop() {
		if _, _, err := p.Parse(ex.Body, "2026-11-24T10:00:00Z"); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, ex := range examples.Provider(examples.ControlShift) {
		f.Add(ex.Body)
	}
	f.Add([]byte(`{"type":"x.y","data":{"url":"&amp;"},"jid":1}`))
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
		if ev.Status != event.StatusValid && ev.Status != event.StatusUnknownType && ev.Status != event.StatusInvalid {
			t.Fatalf("status %q", ev.Status)
		}
	})
}
