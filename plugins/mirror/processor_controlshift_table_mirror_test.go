package mirror

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func newTestProcessor(t *testing.T, yaml string) *processor {
	t.Helper()
	conf, err := processorSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessor(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// A message as controlshift_webhook and the envelope mapping leave it.
func bulkMessage(eventType, id, table, url string) *service.Message {
	msg := service.NewMessage(nil)
	msg.SetStructured(map[string]any{
		"type": "org.controlshift." + eventType,
		"data": map[string]any{"url": url, "table": table},
	})
	msg.MetaSetMut("event_type", eventType)
	msg.MetaSetMut("event_id", id)
	return msg
}

const unreachableDSN = "dsn: postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"

func TestDefaultsReadTheBulkDataEvent(t *testing.T) {
	p := newTestProcessor(t, unreachableDSN)
	const u = "https://agra-data-exports.s3.amazonaws.com/default/petitions_20150803180434.csv?AWSAccessKeyId=XXX&Expires=1438711490&Signature=ABCDE%3D"
	for eventType, kind := range map[string]Kind{
		"data.full_table_exported":        KindFull,
		"data.incremental_table_exported": KindIncremental,
	} {
		j, err := p.job(bulkMessage(eventType, "ev1", "petitions", u))
		if err != nil {
			t.Fatal(err)
		}
		if want := (Job{Table: "petitions", URL: u, Kind: kind, LoadID: "ev1"}); j != want {
			t.Errorf("%s: job %+v, want %+v", eventType, j, want)
		}
	}
	// Without an event id the load id is empty (the URL path is used).
	msg := service.NewMessage([]byte(`{"data":{}}`))
	j, err := p.job(msg)
	if err != nil {
		t.Fatal(err)
	}
	if j.LoadID != "" || j.URL != "" || j.Table != "" || j.Kind != KindIncremental {
		t.Errorf("job of an empty event: %+v", j)
	}
	if p.loader.conf.Schema != "controlshift" || p.loader.conf.PrimaryKey != "id" || p.timeout.Minutes() != 15 || cap(p.sem) != 4 {
		t.Errorf("defaults: %+v timeout %s in flight %d", p.loader.conf, p.timeout, cap(p.sem))
	}
}

func TestConfigRefusals(t *testing.T) {
	for yaml, want := range map[string]string{
		unreachableDSN + "\nschema: Bad-Schema":                             "schema",
		unreachableDSN + "\nprimary_key: \"id; drop\"":                      "primary key column name",
		unreachableDSN + "\ncolumn_types: { goal: \"int; DROP TABLE x\" }":  "does not look like an SQL type",
		unreachableDSN + "\ncolumn_types: { \"a.b.c\": int }":               "column or table.column",
		unreachableDSN + "\ncolumn_types: { \"go-al\": int }":               "column or table.column",
		unreachableDSN + "\nmax_in_flight: 0":                               "at least 1",
		"dsn: \"postgres://u:secretpw@127.0.0.1:5432/db?sslmode=nonsense\"": "dsn",
	} {
		conf, err := processorSpec().ParseYAML(yaml, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newProcessor(conf, service.MockResources())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", yaml, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	// Types that are fine.
	newTestProcessor(t, unreachableDSN+"\ncolumn_types: { id: bigint, created_at: timestamp with time zone, \"petitions.goal\": \"numeric(12, 2)\", tags: \"text[]\" }")
}

// Messages the processor cannot load are failed on their own, before any
// connection, each with its reason; the batch keeps its order.
func TestProcessBatchFailsBadEventsEach(t *testing.T) {
	p := newTestProcessor(t, unreachableDSN+"\nkind: '${! @kind }'")
	batch := service.MessageBatch{
		bulkMessage("data.full_table_exported", "e1", "petitions; DROP TABLE x", "https://h.example/x.csv?Signature=s3cr3t"),
		bulkMessage("data.full_table_exported", "e2", "hookpipe_mirror_loads", "https://h.example/y.csv"),
		bulkMessage("data.full_table_exported", "e3", "petitions", "https://h.example/z.csv?Signature=s3cr3t"),
		bulkMessage("data.full_table_exported", "e4", "petitions", ""),
	}
	batch[0].MetaSetMut("kind", "full")
	batch[1].MetaSetMut("kind", "full")
	batch[2].MetaSetMut("kind", "replace")
	batch[3].MetaSetMut("kind", "full")
	out, err := p.ProcessBatch(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || len(out[0]) != 4 {
		t.Fatalf("got %d batches", len(out))
	}
	wants := []string{"table name", "reserved", `kind "replace"`, "no URL"}
	for i, msg := range out[0] {
		if id, _ := msg.MetaGet("event_id"); id != "e"+strconv.Itoa(i+1) {
			t.Errorf("message %d is %s", i, id)
		}
		merr := msg.GetError()
		if merr == nil || !strings.Contains(merr.Error(), wants[i]) {
			t.Errorf("message %d: error %v, want %q", i, merr, wants[i])
			continue
		}
		if strings.Contains(merr.Error(), "s3cr3t") {
			t.Errorf("message %d: the error shows the query string: %v", i, merr)
		}
		if s, _ := msg.MetaGet(MetaStatus); s != "failed" {
			t.Errorf("message %d: %s = %q", i, MetaStatus, s)
		}
		if e, _ := msg.MetaGet(MetaError); e != merr.Error() {
			t.Errorf("message %d: %s = %q", i, MetaError, e)
		}
	}
	if table, _ := out[0][0].MetaGet(MetaTable); table != "invalid" {
		t.Errorf("an invalid table name is labelled %q", table)
	}
	if batch[0].GetError() != nil {
		t.Error("the input message was changed")
	}
}
