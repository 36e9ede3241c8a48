package blobl_test

import (
	"context"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/hookpipe/hookpipe/plugins/bloblang"
	_ "github.com/hookpipe/hookpipe/plugins/controlshift"
	"github.com/hookpipe/hookpipe/plugins/examples"
	_ "github.com/hookpipe/hookpipe/plugins/thecity"
	"github.com/hookpipe/hookpipe/plugins/webhook"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// The processors of the quickstart pipeline, as resources the benchmarks
// call directly: the provider parsers and the CloudEvents envelope mapping.
const benchResources = `
processor_resources:
  - label: controlshift
    controlshift_webhook: {}
  - label: thecity
    thecity_webhook:
      lenient_json: true
  - label: envelope
    mapping: 'from "../../blobl/envelope.blobl"'
`

type benchCase struct {
	provider, example string
}

var benchCases = []benchCase{
	{examples.ControlShift, "signature.created"},
	{examples.ControlShift, "petition.updated"},
	{examples.TheCity, "users_update"},
}

func withResources(b testing.TB, fn func(ctx context.Context, res *service.Resources)) {
	b.Helper()
	rb := service.NewResourceBuilder()
	if err := rb.AddYAML(benchResources); err != nil {
		b.Fatal(err)
	}
	res, closeFn, err := rb.Build()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = closeFn(context.Background()) })
	fn(context.Background(), res)
}

// received is a request as the webhook_server input hands it on.
func received(b testing.TB, c benchCase) *service.Message {
	b.Helper()
	ex, ok := examples.Get(c.provider, c.example)
	if !ok {
		b.Fatalf("no example %s/%s", c.provider, c.example)
	}
	msg := service.NewMessage(ex.Body)
	msg.MetaSetMut(webhook.MetaProvider, c.provider)
	msg.MetaSetMut(webhook.MetaEndpoint, "/webhooks/"+c.provider)
	msg.MetaSetMut(webhook.MetaRequestID, "bench")
	msg.MetaSetMut(webhook.MetaReceivedAt, "2026-11-25T10:00:00.123456Z")
	return msg
}

func process(ctx context.Context, b testing.TB, res *service.Resources, label string, msg *service.Message) *service.Message {
	var out service.MessageBatch
	var perr error
	if err := res.AccessProcessor(ctx, label, func(p *service.ResourceProcessor) {
		out, perr = p.Process(ctx, msg)
	}); err != nil {
		b.Fatal(err)
	}
	if perr != nil || len(out) != 1 {
		b.Fatalf("%s: %v (%d messages)", label, perr, len(out))
	}
	if err := out[0].GetError(); err != nil {
		b.Fatalf("%s: %v", label, err)
	}
	return out[0]
}

// BenchmarkEnvelope is the CloudEvents mapping alone, on a parsed event.
func BenchmarkEnvelope(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.provider+"/"+c.example, func(b *testing.B) {
			withResources(b, func(ctx context.Context, res *service.Resources) {
				parsed := process(ctx, b, res, c.provider, received(b, c))
				b.ReportAllocs()
				for b.Loop() {
					process(ctx, b, res, "envelope", parsed.Copy())
				}
			})
		})
	}
}

// BenchmarkParseAndEnvelope is a request's whole pipeline work: the provider
// processor, then the mapping.
func BenchmarkParseAndEnvelope(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.provider+"/"+c.example, func(b *testing.B) {
			withResources(b, func(ctx context.Context, res *service.Resources) {
				in := received(b, c)
				b.ReportAllocs()
				for b.Loop() {
					parsed := process(ctx, b, res, c.provider, in.Copy())
					process(ctx, b, res, "envelope", parsed)
				}
			})
		})
	}
}

// The benchmarks' inputs go through the same processors as in a config: each
// becomes an envelope (so a benchmark never measures a failure path).
func TestBenchCasesMakeEnvelopes(t *testing.T) {
	for _, c := range benchCases {
		withResources(t, func(ctx context.Context, res *service.Resources) {
			out := process(ctx, t, res, "envelope", process(ctx, t, res, c.provider, received(t, c)))
			env, err := out.AsStructured()
			if err != nil {
				t.Fatal(err)
			}
			m := env.(map[string]any)
			if m["specversion"] != "1.0" || m["provider"] != c.provider || m["data"] == nil {
				t.Errorf("%s/%s: %v", c.provider, c.example, m)
			}
		})
	}
}
