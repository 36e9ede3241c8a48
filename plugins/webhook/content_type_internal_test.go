package webhook

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func TestContentTypesMustBeBareMediaTypes(t *testing.T) {
	for _, ct := range []string{"application/json; charset=utf-8", "json", "application/", ""} {
		conf, err := inputSpec().ParseYAML(fmt.Sprintf(`
allowed_content_types: [ %q ]
endpoints:
  - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, ct), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newWebhookServer(conf, service.MockResources()); err == nil || !strings.Contains(err.Error(), "allowed_content_types") {
			t.Errorf("content type %q: error %v", ct, err)
		}
	}
	conf, err := inputSpec().ParseYAML(`
allowed_content_types: [ " Application/JSON ", application/x-ndjson ]
endpoints:
  - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWebhookServer(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON; charset=utf-8": true, "application/x-ndjson": true,
		"application/cloudevents+json": true, "": true, "text/plain": false, "application/jsonx": false, "not a type": false,
	} {
		if got := w.contentTypeAllowed(ct); got != want {
			t.Errorf("content type %q allowed %v, want %v", ct, got, want)
		}
	}
}
