package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// probeWithin runs the readiness probe with a timeout and fails the test if
// the probe ignores it (returns seconds after it): a probe must return by
// its ctx's deadline, since the webhook input runs all sink probes of a
// stream together and waits for the slowest. The margin is wide so that a
// slow machine never fails it; a probe stuck behind Connect takes 20 s.
func probeWithin(t *testing.T, o *franzOutput, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := o.reachable(ctx)
	if took := time.Since(start); took > timeout+5*time.Second {
		t.Fatalf("the probe took %s with a %s timeout", took.Round(time.Millisecond), timeout)
	}
	return err
}

// A Connect waiting for a seed broker that never answers does not hold the
// probe past its timeout.
func TestProbeDoesNotWaitForConnect(t *testing.T) {
	// A seed broker that accepts connections and never answers.
	silent := startProxy(t, "")

	o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]\ntopic: t\n", silent.addr()))
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

// The client knows the brokers of a cluster that went away; a new cluster
// answers behind the same seed address. The probe passes again within a few
// rounds, without waiting for the client's next metadata refresh (minutes).
func TestProbeFollowsClusterBehindSeed(t *testing.T) {
	first, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	seed := startProxy(t, first.ListenAddrs()[0])

	o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]\ntopic: t\n", seed.addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	if err := probeWithin(t, o, time.Second); err != nil {
		t.Fatalf("probe with the first cluster up: %v", err)
	}

	first.Close()
	second, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Close)
	seed.retarget(second.ListenAddrs()[0])
	// The first probes may still meet the connections that died with the
	// first cluster; the next ones dial the seed address again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := probeWithin(t, o, time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe with a new cluster behind the seed address still failing after 5s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tcpProxy forwards each connection it accepts to its target address, or,
// with none, holds it open without a word.
type tcpProxy struct {
	ln     net.Listener
	target atomic.Value // string
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	p.target.Store(target)
	var conns sync.WaitGroup
	accepted := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { p.serve(c, stop) })
		}
	}()
	// The accept loop ends before the connections are waited for.
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		close(stop)
		conns.Wait()
	})
	return p
}

func (p *tcpProxy) addr() string           { return p.ln.Addr().String() }
func (p *tcpProxy) retarget(target string) { p.target.Store(target) }

func (p *tcpProxy) serve(c net.Conn, stop <-chan struct{}) {
	defer c.Close()
	target := p.target.Load().(string)
	if target == "" {
		<-stop
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	select {
	case <-done:
	case <-stop:
	}
}
