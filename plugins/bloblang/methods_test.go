package bloblang_test

import (
	"testing"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/hookpipe/hookpipe/plugins/bloblang"
	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

// json_text of a structured root is what content() gives for it.
func TestJSONTextIsContent(t *testing.T) {
	exec, err := bloblang.Parse(`root = [ this.json_text(), content().string() ]`)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range examples.Provider(examples.TheCity) {
		doc, err := jsonread.Decode(ex.Body, jsonread.Options{Lenient: true})
		if err != nil {
			t.Fatal(err)
		}
		doc["html"] = "<a href='x'>&</a>"
		msg := service.NewMessage(nil)
		msg.SetStructured(doc)
		res, err := msg.BloblangQuery(exec)
		if err != nil {
			t.Fatalf("%s: %v", ex.Name, err)
		}
		out, err := res.AsStructured()
		if err != nil {
			t.Fatal(err)
		}
		pair := out.([]any)
		if pair[0] != pair[1] {
			t.Fatalf("%s:\njson_text %s\ncontent   %s", ex.Name, pair[0], pair[1])
		}
	}
}
