package event

import (
	"reflect"
	"sync"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func TestDecodeMessageTakesTheInputsDocumentOnce(t *testing.T) {
	body := []byte(`{"type":"petition.launched","data":{"slug":"a"}}`)
	msg, err := CheckAndKeep(service.NewMessage(body), body, false)
	if err != nil {
		t.Fatal(err)
	}
	kept := msg.Context().Value(decodedKey{}).(*decoded).doc
	// The engine hands processors copies of the message; the bytes stay the same array.
	copied := msg.Copy()
	content, _ := copied.AsBytes()
	first, err := DecodeMessage(copied, content, false)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(first).Pointer() != reflect.ValueOf(kept).Pointer() {
		t.Fatal("the kept document was not taken: the body was decoded twice")
	}
	// A second reader gets a document of its own, never the one the first changes.
	first["data"] = "changed"
	second, err := DecodeMessage(msg, body, false)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(second).Pointer() == reflect.ValueOf(first).Pointer() || second["data"] == "changed" {
		t.Fatalf("the document was handed out twice: %v", second)
	}
}

func TestDecodeMessageReadsReplacedContent(t *testing.T) {
	body := []byte(`{"type":"a"}`)
	msg, err := CheckAndKeep(service.NewMessage(body), body, false)
	if err != nil {
		t.Fatal(err)
	}
	// A processor before the parser replaced the content (same length even).
	msg.SetBytes([]byte(`{"type":"b"}`))
	content, _ := msg.AsBytes()
	doc, err := DecodeMessage(msg, content, false)
	if err != nil || doc["type"] != "b" {
		t.Fatalf("got %v, %v: the stale document was used", doc, err)
	}
}

func TestDecodeMessageStrictAfterLenientInput(t *testing.T) {
	body := []byte(`{"webhook_object":"User","id":nil,}`)
	msg, err := CheckAndKeep(service.NewMessage(body), body, true)
	if err != nil {
		t.Fatalf("lenient check refused a City body: %v", err)
	}
	// A strict processor must not take what only a lenient read accepted.
	if doc, err := DecodeMessage(msg, body, false); err == nil {
		t.Fatalf("strict read accepted %v", doc)
	}
	if doc, err := DecodeMessage(msg, body, true); err != nil || doc["webhook_object"] != "User" {
		t.Fatalf("lenient read: %v, %v", doc, err)
	}
}

func TestCheckAndKeepRefusesWhatDecodeRefuses(t *testing.T) {
	for _, body := range []string{`{"a":1,"a":2}`, `[1]`, `{"a":`, "{\"a\":\"\xff\"}"} {
		msg := service.NewMessage([]byte(body))
		got, err := CheckAndKeep(msg, []byte(body), false)
		if err == nil || got != msg {
			t.Errorf("%q accepted", body)
		}
		if _, derr := Decode([]byte(body), false); derr == nil {
			t.Errorf("%q: Decode accepts it", body)
		}
	}
}

// Parsers running at once on copies of one message (a fan-out) get one
// document between them; run with -race.
func TestDecodeMessageConcurrentCopies(t *testing.T) {
	body := []byte(`{"type":"petition.launched","data":{"slug":"a"}}`)
	msg, err := CheckAndKeep(service.NewMessage(body), body, false)
	if err != nil {
		t.Fatal(err)
	}
	kept := reflect.ValueOf(msg.Context().Value(decodedKey{}).(*decoded).doc).Pointer()
	const readers = 8
	docs := make([]map[string]any, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := msg.Copy()
			content, _ := c.AsBytes()
			doc, err := DecodeMessage(c, content, false)
			if err != nil {
				t.Error(err)
			}
			doc["reader"] = i // each reader changes its own document
			docs[i] = doc
		}()
	}
	wg.Wait()
	taken := 0
	for _, d := range docs {
		if reflect.ValueOf(d).Pointer() == kept {
			taken++
		}
	}
	if taken != 1 {
		t.Fatalf("the kept document went to %d readers", taken)
	}
}
