package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// KafkaBrokersEnv names an existing Kafka-protocol cluster to test against,
// as a comma-separated list of host:port. When it is unset, Kafka starts a
// kfake broker (tests/kfake) on 127.0.0.1 for the test.
const KafkaBrokersEnv = "HOOKPIPE_TEST_KAFKA_BROKERS"

// KafkaBroker is a Kafka-protocol broker for one test.
type KafkaBroker struct {
	// Brokers is the comma-separated seed broker list.
	Brokers string

	t          testing.TB
	external   bool
	forceLocal bool
	sasl       *kafkaUser
	args       []string

	mu  sync.Mutex
	cmd *exec.Cmd // nil while stopped
}

type kafkaUser struct{ mechanism, user, pass string }

// KafkaOption changes the broker that Kafka starts.
type KafkaOption func(*KafkaBroker)

// KafkaSASL makes the broker require SASL and accept one user with the
// mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Such a broker is always
// started locally, even when KafkaBrokersEnv is set. kcat cannot log in to
// it: librdkafka 2.0 requires the SASL handshake v0, which kfake does not
// serve; read it back with a franz-go client instead.
func KafkaSASL(mechanism, user, pass string) KafkaOption {
	return func(k *KafkaBroker) { k.sasl, k.forceLocal = &kafkaUser{mechanism, user, pass}, true }
}

// KafkaRestartable asks for a broker that Stop and Start control, for
// outage tests: it is always started locally, even when KafkaBrokersEnv is
// set.
func KafkaRestartable() KafkaOption {
	return func(k *KafkaBroker) { k.forceLocal = true }
}

// KafkaTopics creates topics when the broker starts (producers can also
// create topics on demand). Ignored for a broker named by KafkaBrokersEnv.
func KafkaTopics(topics ...string) KafkaOption {
	return func(k *KafkaBroker) {
		for _, topic := range topics {
			k.args = append(k.args, "-topic", topic)
		}
	}
}

// Kafka returns the broker named by KafkaBrokersEnv, or starts a kfake broker
// with 3 partitions per topic on a free 127.0.0.1 port that stops when the
// test ends. It fails the test if the broker does not answer.
//
// The started broker keeps its records in a data directory in the test's
// temp dir, so Stop followed by Start (an outage) keeps what was written.
func Kafka(t testing.TB, opts ...KafkaOption) *KafkaBroker {
	t.Helper()
	k := &KafkaBroker{t: t}
	for _, opt := range opts {
		opt(k)
	}
	if env := os.Getenv(KafkaBrokersEnv); env != "" && !k.forceLocal {
		k.Brokers, k.external = env, true
		first := strings.TrimSpace(strings.Split(env, ",")[0])
		if err := WaitTCP(first, 10*time.Second); err != nil {
			t.Fatalf("harness: kafka from %s: %v", KafkaBrokersEnv, err)
		}
		return k
	}

	bin := kfakeBinary(t)
	k.args = append(k.args, "-data-dir", filepath.Join(t.TempDir(), "kafka-data"))
	if k.sasl != nil {
		k.args = append(k.args, "-user", k.sasl.mechanism+":"+k.sasl.user+":"+k.sasl.pass)
	}
	// A port picked free can be taken before the broker binds it; try
	// a few.
	var lastErr error
	for range 3 {
		port := FreePort(t)
		k.Brokers = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, append([]string{"-port", strconv.Itoa(port)}, k.args...)...)
		k.mu.Lock()
		lastErr = k.startLocked(cmd)
		k.mu.Unlock()
		if lastErr == nil {
			return k
		}
	}
	t.Fatalf("harness: kafka did not start: %v", lastErr)
	return nil
}

// startLocked starts cmd and waits until it reports that it listens on
// k.Brokers; a connection test alone could reach another process that took
// the port.
func (k *KafkaBroker) startLocked(cmd *exec.Cmd) error {
	logPath := StartProcess(k.t, "kfake", cmd)
	ready := "listening on " + k.Brokers
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := os.ReadFile(logPath)
		if bytes.Contains(out, []byte(ready)) {
			break
		}
		if bytes.Contains(out, []byte("kfake: ")) || time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
			return fmt.Errorf("kfake did not report %q\n--- kfake log ---\n%s", ready, TailFile(logPath, 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := WaitTCP(k.Brokers, 5*time.Second); err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return err
	}
	k.cmd = cmd
	return nil
}

// Stop shuts the broker down cleanly (it saves its records) and waits until
// it has exited, so clients see connections refused until Start. It fails
// the test for a broker named by KafkaBrokersEnv; ask for KafkaRestartable.
func (k *KafkaBroker) Stop() {
	k.t.Helper()
	if k.external {
		k.t.Fatalf("harness: cannot stop the external kafka at %s", k.Brokers)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd == nil {
		return
	}
	proc := k.cmd.Process
	_ = proc.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_, _ = proc.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = proc.Kill()
		<-done
		k.t.Logf("harness: kfake did not stop on SIGTERM and was killed; its unsaved records are lost")
	}
	k.cmd = nil
}

// Start restarts a stopped broker on the same address with the same data.
func (k *KafkaBroker) Start() {
	k.t.Helper()
	if k.external {
		k.t.Fatalf("harness: cannot start the external kafka at %s", k.Brokers)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd != nil {
		return
	}
	_, port, _ := net.SplitHostPort(k.Brokers)
	cmd := exec.Command(kfakeBinary(k.t), append([]string{"-port", port}, k.args...)...)
	if err := k.startLocked(cmd); err != nil {
		k.t.Fatalf("harness: kafka did not restart: %v", err)
	}
}

var kfakeBuild struct {
	once sync.Once
	path string
	err  error
}

// kfakeBinary builds tests/kfake once per test process. The binary goes to
// a fixed place in the temp dir, written under a unique name and renamed, so
// concurrent test processes never run a half-written file and repeated runs
// leave one binary behind rather than one per run.
func kfakeBinary(t testing.TB) string {
	t.Helper()
	kfakeBuild.once.Do(func() {
		dir := filepath.Join(os.TempDir(), "hookpipe-test-bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			kfakeBuild.err = err
			return
		}
		f, err := os.CreateTemp(dir, "kfake-*")
		if err != nil {
			kfakeBuild.err = err
			return
		}
		tmp := f.Name()
		f.Close()
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goBin, "build", "-o", tmp, "./tests/kfake")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			kfakeBuild.err = fmt.Errorf("go build ./tests/kfake: %v\n%s", err, out)
			return
		}
		final := filepath.Join(dir, "kfake")
		if err := os.Rename(tmp, final); err != nil {
			os.Remove(tmp)
			kfakeBuild.err = err
			return
		}
		kfakeBuild.path = final
	})
	if kfakeBuild.err != nil {
		t.Fatalf("harness: building kfake: %v", kfakeBuild.err)
	}
	return kfakeBuild.path
}

// KcatRecord is one record as Debian's kcat consumer reports it.
type KcatRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	// HasKey is false for a record without a key (null), as opposed to an
	// empty one.
	HasKey  bool
	Key     string
	Value   string
	Headers []KcatHeader // in record order
}

// KcatHeader is one record header.
type KcatHeader struct{ Key, Value string }

// Header returns the value of the first header named key.
func (r KcatRecord) Header(key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

// ConsumeWithKcat reads topic from the beginning with kcat, an independent
// client (librdkafka), until it has at least n records or 30 s have passed,
// and fails the test in the latter case. extra is passed to kcat (for example
// -X options for an external broker that needs them). Records come in the
// order kcat printed them: offset order within a partition, partitions
// interleaved.
//
// kcat prints values and keys as JSON strings, so they compare byte for byte
// only when they are valid UTF-8.
func ConsumeWithKcat(t testing.TB, brokers, topic string, n int, extra ...string) []KcatRecord {
	t.Helper()
	records, err := consumeWithKcat(brokers, topic, n, extra)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return records
}

// ConsumeTopicsWithKcat reads several topics at once, want[topic] records
// from each, with one kcat per topic running concurrently.
func ConsumeTopicsWithKcat(t testing.TB, brokers string, want map[string]int) map[string][]KcatRecord {
	t.Helper()
	type result struct {
		topic   string
		records []KcatRecord
		err     error
	}
	results := make(chan result, len(want))
	limit := make(chan struct{}, 8)
	for topic, n := range want {
		go func() {
			limit <- struct{}{}
			defer func() { <-limit }()
			records, err := consumeWithKcat(brokers, topic, n, nil)
			results <- result{topic, records, err}
		}()
	}
	out := map[string][]KcatRecord{}
	for range want {
		r := <-results
		if r.err != nil {
			t.Fatalf("harness: %v", r.err)
		}
		out[r.topic] = r.records
	}
	return out
}

func consumeWithKcat(brokers, topic string, n int, extra []string) ([]KcatRecord, error) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		return nil, fmt.Errorf("kcat is not installed (apt-get install -y kcat): %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var (
		records []KcatRecord
		lastErr error
	)
	for {
		records, lastErr = runKcat(kcat, brokers, topic, extra)
		if lastErr == nil && len(records) >= n {
			return records, nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return nil, fmt.Errorf("kcat read %d of %d records from topic %q at %s: %v", len(records), n, topic, brokers, lastErr)
}

func runKcat(kcat, brokers, topic string, extra []string) ([]KcatRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-J", "-q"}, extra...)
	cmd := exec.CommandContext(ctx, kcat, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// The arguments may hold a SASL password: report stderr only.
		return nil, fmt.Errorf("kcat: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var records []KcatRecord
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var raw struct {
			Topic     string   `json:"topic"`
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			TS        int64    `json:"ts"`
			Headers   []string `json:"headers"`
			Key       *string  `json:"key"`
			Payload   *string  `json:"payload"`
		}
		if err := json.Unmarshal(line, &raw); err != nil {
			return nil, fmt.Errorf("kcat printed %q: %w", line, err)
		}
		r := KcatRecord{
			Topic: raw.Topic, Partition: raw.Partition, Offset: raw.Offset,
			Timestamp: time.UnixMilli(raw.TS),
		}
		if raw.Key != nil {
			r.HasKey, r.Key = true, *raw.Key
		}
		if raw.Payload != nil {
			r.Value = *raw.Payload
		}
		for i := 0; i+1 < len(raw.Headers); i += 2 {
			r.Headers = append(r.Headers, KcatHeader{raw.Headers[i], raw.Headers[i+1]})
		}
		records = append(records, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return records, nil
}
