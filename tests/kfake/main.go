// Command kfake runs an in-process Kafka-protocol broker (franz-go's kfake) on
// 127.0.0.1 for hookpipe's integration tests and local experiments.
//
//	go run ./tests/kfake -port 9092 -topic events -topic dlq
//
// It prints "listening on 127.0.0.1:PORT" once the broker accepts connections
// and runs until SIGTERM or SIGINT. Producers may create topics on demand.
//
// Records live in memory unless -data-dir is given, in which case the broker
// saves its state there on a clean shutdown (SIGTERM/SIGINT) and reloads it on
// the next start, so a restart on the same port keeps what was written.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var (
		port       = flag.Int("port", 0, "TCP port on 127.0.0.1 (0 picks a free one)")
		partitions = flag.Int("partitions", 3, "partitions of seeded and auto-created topics")
		dataDir    = flag.String("data-dir", "", "persist the broker's state in this directory across restarts")
		topics     listFlag
		users      listFlag
	)
	flag.Var(&topics, "topic", "topic to create at start (repeatable)")
	flag.Var(&users, "user", "require SASL and add the user MECHANISM:NAME:PASSWORD, MECHANISM one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (repeatable)")
	flag.Parse()

	if *partitions < 1 {
		fatalf("-partitions must be at least 1")
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(*port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), topics...))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if len(users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range users {
			mech, rest, ok1 := strings.Cut(u, ":")
			name, pass, ok2 := strings.Cut(rest, ":")
			if !ok1 || !ok2 || name == "" {
				fatalf("-user wants MECHANISM:NAME:PASSWORD")
			}
			opts = append(opts, kfake.Superuser(mech, name, pass))
		}
	}

	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		fatalf("starting broker: %v", err)
	}
	fmt.Printf("listening on %s\n", cluster.ListenAddrs()[0])

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	// Close saves the state to -data-dir when it is set.
	cluster.Close()
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kfake: "+format+"\n", args...)
	os.Exit(1)
}
