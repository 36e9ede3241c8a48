//go:build integration

package guarantees

import (
	"strings"
	"testing"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// Values that end up in object keys and SQL statements are data, never
// path or SQL: a webhook_id with ../ segments stays inside its partition,
// and SQL in ids and fields is stored as text with the tables intact.
func TestHostileValuesInKeysAndSQL(t *testing.T) {
	hostileIDs := []string{"../../../escape", "/absolute", `x'); DROP TABLE events; --`, "a/./b/../c"}
	deliver := func(t *testing.T, hp *harness.Hookpipe) {
		for _, id := range hostileIDs {
			body := `{"webhook_object":"User","webhook_event":"destroy","webhook_id":"` + strings.ReplaceAll(id, `"`, `\"`) + `","id":1,"first":"Robert'); DROP TABLE events;--"}`
			if status, reply := hp.Post(t, "/webhooks/thecity", []byte(body), map[string]string{"X-City-Webhook-Signature": citySecret}); status != 200 {
				t.Fatalf("%q: %d %s", id, status, reply)
			}
		}
	}

	t.Run("postgres", func(t *testing.T) {
		pg := harness.Postgres(t)
		hp := harness.StartHookpipe(t, "configs/postgres.yaml", append(providerEnv, "HOOKPIPE_POSTGRES_DSN="+pg.DSN)...)
		deliver(t, hp)
		ids := pg.Psql(t, "SELECT id FROM events ORDER BY id")
		for _, id := range hostileIDs {
			if !strings.Contains(ids, id) {
				t.Errorf("id %q not stored as text: %s", id, ids)
			}
		}
		if n := strings.TrimSpace(pg.Psql(t, "SELECT count(*) FROM events WHERE event->'data'->>'first' LIKE 'Robert%'")); n != "4" {
			t.Errorf("%s rows with the hostile field stored verbatim, want 4", n)
		}
	})

	t.Run("s3", func(t *testing.T) {
		s3 := harness.S3(t)
		s3.CreateBucket(t, "hostile")
		hp := harness.StartHookpipe(t, "configs/s3.yaml", append(providerEnv,
			"HOOKPIPE_S3_BUCKET=hostile", "HOOKPIPE_S3_ENDPOINT="+s3.Endpoint, "HOOKPIPE_S3_PATH_STYLE=true",
			"AWS_REGION="+s3.Region, "AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey)...)
		deliver(t, hp)
		keys := s3.ListObjects(t, "hostile", "")
		if len(keys) == 0 {
			t.Fatal("nothing written")
		}
		for _, key := range keys {
			if !strings.HasPrefix(key, "events/provider=thecity/type=org.thecity.user.destroy/date=") {
				t.Errorf("key %q escaped its partition", key)
			}
			for _, seg := range strings.Split(key, "/") {
				if seg == ".." || seg == "." || seg == "" {
					t.Errorf("key %q has a %q segment", key, seg)
				}
			}
		}
	})
}
