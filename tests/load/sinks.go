package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookpipe/hookpipe/tests/harness"
)

// sink is the service a scenario writes to, prepared fresh for one run.
type sink struct {
	// env is handed to the server (DSN, brokers, topics).
	env []string
	// stored counts what the service holds after the run, with a short
	// description ("events 1200 + dead_letters 0").
	stored func(ctx context.Context) (int64, string, error)
	// processes are the command names (prefixes) of the service's local
	// processes, whose CPU time the report shows next to the server's.
	processes []string
}

// postgresSink gives scenario (d) a database of its own on the server the
// test harness finds or starts (HOOKPIPE_TEST_PG_DSN, the PG* variables, a
// server on 127.0.0.1:5432 with trust auth for postgres, else a throwaway
// cluster), dropped when the scenario ends.
func postgresSink(t testing.TB) *sink {
	pg := harness.Postgres(t)
	return &sink{
		env:       []string{"HOOKPIPE_PG_DSN=" + pg.DSN},
		processes: []string{"postgres"},
		stored: func(ctx context.Context) (int64, string, error) {
			conn, err := pgx.Connect(ctx, pg.DSN)
			if err != nil {
				return 0, "", err
			}
			defer conn.Close(ctx)
			var events, dead int64
			// to_regclass: a table the output never created counts as empty.
			err = conn.QueryRow(ctx, `SELECT
				CASE WHEN to_regclass('events') IS NULL THEN 0 ELSE (SELECT count(*) FROM events) END,
				CASE WHEN to_regclass('dead_letters') IS NULL THEN 0 ELSE (SELECT count(*) FROM dead_letters) END`).Scan(&events, &dead)
			if err != nil {
				return 0, "", err
			}
			return events + dead, fmt.Sprintf("events %d + dead_letters %d rows", events, dead), nil
		},
	}
}

// kafkaSink gives scenario (e) a broker of its own: a kfake process started
// by the test harness (it keeps every record in memory, so each run gets a
// new one), or the cluster named by HOOKPIPE_TEST_KAFKA_BROKERS. Topic names
// are unique per run either way.
func kafkaSink(t testing.TB) *sink {
	k := harness.Kafka(t)
	suffix := randomHex(4)
	topic, dlq := "hookpipe-load-events-"+suffix, "hookpipe-load-dead-letters-"+suffix
	return &sink{
		env: []string{
			"HOOKPIPE_KAFKA_BROKERS=" + k.Brokers,
			"HOOKPIPE_KAFKA_TOPIC=" + topic,
			"HOOKPIPE_KAFKA_DLQ_TOPIC=" + dlq,
		},
		processes: []string{"kfake"},
		stored: func(ctx context.Context) (int64, string, error) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers))
			if err != nil {
				return 0, "", err
			}
			defer cl.Close()
			events, err := topicRecords(ctx, cl, topic)
			if err != nil {
				return 0, "", err
			}
			dead, err := topicRecords(ctx, cl, dlq)
			if err != nil {
				return 0, "", err
			}
			return events + dead, fmt.Sprintf("%s %d + %s %d records", topic, events, dlq, dead), nil
		},
	}
}

// topicRecords is the sum of the end offsets of a topic's partitions: the
// number of records written, since the producer writes no transaction
// markers. A topic that does not exist holds none.
func topicRecords(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	if len(mresp.Topics) != 1 {
		return 0, fmt.Errorf("metadata for %s: %d topics", topic, len(mresp.Topics))
	}
	mtopic := mresp.Topics[0]
	if mtopic.ErrorCode == kerr.UnknownTopicOrPartition.Code {
		return 0, nil
	}
	if err := kerr.ErrorForCode(mtopic.ErrorCode); err != nil {
		return 0, fmt.Errorf("metadata for %s: %w", topic, err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range mtopic.Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition = p.Partition
		lp.Timestamp = -1 // the end offset
		lt.Partitions = append(lt.Partitions, lp)
	}
	req.Topics = append(req.Topics, lt)
	// The client sends each partition to its leader and merges the answers.
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return 0, fmt.Errorf("end offset of %s/%d: %w", topic, rp.Partition, err)
			}
			total += rp.Offset
		}
	}
	return total, nil
}

// serviceTB lets the shared test harness start services for a program run,
// outside `go test`. The harness calls only the methods defined here; the
// embedded interface is nil and exists to satisfy testing.TB's unexported
// method. Fatalf aborts the scenario with serviceUnavailable, which the
// runner reports as skipped; cleanups run when the scenario ends.
type serviceTB struct {
	testing.TB
	name     string
	verbose  bool
	cleanups []func()
}

type serviceUnavailable struct{ reason string }

func (s *serviceTB) Helper()          {}
func (s *serviceTB) Name() string     { return s.name }
func (s *serviceTB) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *serviceTB) Logf(format string, args ...any) {
	if s.verbose {
		fmt.Fprintf(os.Stderr, "  [%s] "+format+"\n", append([]any{s.name}, args...)...)
	}
}

func (s *serviceTB) Log(args ...any) { s.Logf("%s", fmt.Sprint(args...)) }

func (s *serviceTB) Fatalf(format string, args ...any) {
	panic(serviceUnavailable{fmt.Sprintf(format, args...)})
}

func (s *serviceTB) Fatal(args ...any) { panic(serviceUnavailable{fmt.Sprint(args...)}) }

func (s *serviceTB) Errorf(format string, args ...any) { s.Fatalf(format, args...) }

func (s *serviceTB) TempDir() string {
	dir, err := os.MkdirTemp("", "hookpipe-load-"+s.name+"-")
	if err != nil {
		s.Fatalf("temp dir: %v", err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cleanup runs the registered cleanups, last first, like the testing package.
func (s *serviceTB) cleanup() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

// storedTimeout bounds the count after a run.
const storedTimeout = 30 * time.Second
