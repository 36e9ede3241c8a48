package delivered_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	_ "github.com/hookpipe/hookpipe/plugins/delivered"
)

// flakySink fails every write while down, and counts writes per id otherwise.
type flakySink struct {
	mu      sync.Mutex
	down    bool
	written map[string]int
}

func (f *flakySink) Connect(context.Context) error { return nil }
func (f *flakySink) Close(context.Context) error   { return nil }
func (f *flakySink) Write(_ context.Context, m *service.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("sink down")
	}
	id, _ := m.MetaGet("event_id")
	f.written[id]++
	return nil
}

func (f *flakySink) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *flakySink) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written[id]
}

// While the sink fails, every delivery is refused (nothing is marked
// delivered before a write succeeds); once written, a retry is acknowledged
// without a second write.
func TestDeliverOnce(t *testing.T) {
	sink := &flakySink{written: map[string]int{}}
	env := service.NewEnvironment()
	if err := env.RegisterOutput("flaky", service.NewConfigSpec(), func(*service.ParsedConfig, *service.Resources) (service.Output, int, error) {
		return sink, 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	b := env.NewStreamBuilder()
	if err := b.SetYAML(`
cache_resources:
  - label: delivered
    memory:
      default_ttl: 1h
output:
  deliver_once:
    cache: delivered
    output:
      flaky: {}
`); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLoggerYAML(`level: none`); err != nil {
		t.Fatal(err)
	}
	send, err := b.AddProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = stream.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stream.Stop(ctx)
	})

	deliver := func(id string) error {
		m := service.NewMessage([]byte(`{}`))
		m.MetaSetMut("event_id", id)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return send(ctx, m)
	}

	sink.setDown(true)
	for range 3 {
		if err := deliver("e0"); err == nil {
			t.Fatal("acknowledged while the sink was down")
		}
	}
	if n := sink.count("e0"); n != 0 {
		t.Fatalf("e0 written %d times while the sink was down", n)
	}
	sink.setDown(false)
	for i := range 3 {
		id := fmt.Sprint("e", i)
		for range 3 {
			if err := deliver(id); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
		if n := sink.count(id); n != 1 {
			t.Errorf("%s delivered three times, written %d times, want once", id, n)
		}
	}
	if err := deliver(""); err != nil {
		t.Fatal(err)
	}
	if err := deliver(""); err != nil {
		t.Fatal(err)
	}
	if n := sink.count(""); n != 2 {
		t.Errorf("messages without a key written %d times, want every time (2)", n)
	}
}
