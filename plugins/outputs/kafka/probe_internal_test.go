package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// probeWithin runs the readiness probe with a timeout and fails the test if
// it takes much longer than that: the webhook input runs all sink probes of
// a stream together and waits for the slowest.
func probeWithin(t *testing.T, o *franzOutput, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := o.reachable(ctx)
	if took := time.Since(start); took > timeout+time.Second {
		t.Fatalf("the probe took %s with a %s timeout", took.Round(time.Millisecond), timeout)
	}
	return err
}

// A Connect waiting for a seed broker that never answers does not hold the
// probe past its timeout.
func TestProbeDoesNotWaitForConnect(t *testing.T) {
	// A seed broker that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-stop; c.Close() })
		}
	}()

	o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]\ntopic: t\n", ln.Addr().String()))
	connectCtx, cancelConnect := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelConnect()
	connected := make(chan error, 1)
	go func() { connected <- o.Connect(connectCtx) }()
	time.Sleep(200 * time.Millisecond) // Connect is waiting for the broker

	if err := probeWithin(t, o, 500*time.Millisecond); !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("probe while Connect waits: %v, want service.ErrNotConnected", err)
	}
	cancelConnect()
	if err := <-connected; err == nil {
		t.Error("Connect succeeded against a broker that never answers")
	}
	if err := o.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// One broker of three that stops answering does not fail the probe: the
// other two still take writes.
func TestProbePassesWithOneBrokerHung(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "t"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(cluster.Close)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]\ntopic: t\n", cluster.ListenAddrs()[0]))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	if n := len(o.client.DiscoveredBrokers()); n != 3 {
		t.Fatalf("the client knows %d brokers, want 3", n)
	}
	if err := probeWithin(t, o, time.Second); err != nil {
		t.Fatalf("probe with every broker answering: %v", err)
	}

	// From now on the broker with the lowest node id, the one a client
	// asks first, takes metadata requests and never answers them.
	cluster.ControlKey(kmsg.Metadata.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		if cluster.CurrentNode() == 0 {
			cluster.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	for range 3 {
		if err := probeWithin(t, o, time.Second); err != nil {
			t.Fatalf("probe with one broker of three hung: %v", err)
		}
	}
}
