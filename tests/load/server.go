package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildBinaries builds the hookpipe distribution and the bare server once
// per run into dir.
func buildBinaries(repo, dir string) (hookpipe, bare string, err error) {
	hookpipe = filepath.Join(dir, "hookpipe")
	bare = filepath.Join(dir, "bare")
	for _, b := range []struct{ out, pkg string }{{hookpipe, "./cmd/hookpipe"}, {bare, "./tests/load/bare"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return hookpipe, bare, nil
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serverProc is one server under test, running as its own process.
type serverProc struct {
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	exited  chan struct{}
	waitErr error
}

// startServer starts bin with args in dir, on CPU 0 when pin is set (through
// taskset, which execs the server: the pid is the server's own, so /proc
// shows its memory and CPU time).
func startServer(bin string, args, env []string, dir, logPath string, pin bool) (*serverProc, error) {
	argv := append([]string{bin}, args...)
	if pin {
		argv = append([]string{"taskset", "-c", "0"}, argv...)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(bin), err)
	}
	s := &serverProc{cmd: cmd, logPath: logPath, logFile: logFile, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// waitListening waits until addr accepts connections, the process exits or
// the timeout passes.
func (s *serverProc) waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before listening (%v)\n%s", s.waitErr, s.logTail())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not listen on %s within %s\n%s", addr, timeout, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running reports whether the process is still alive.
func (s *serverProc) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop asks the server to shut down and kills it if it has not within 15 s.
func (s *serverProc) stop() {
	defer s.logFile.Close()
	if !s.running() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *serverProc) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	const n = 3000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return "--- server log (tail) ---\n" + string(b)
}

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmHWM line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		return kb * 1024, err
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime is the user plus system CPU time the process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after its
	// closing parenthesis are plain. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// machineCPU reads the time of all CPUs together from /proc/stat, in
// clock ticks: busy (neither idle nor waiting for I/O) and in all.
func machineCPU() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseMachineCPU(b)
}

// parseMachineCPU reads the first line of /proc/stat, "cpu  user nice
// system idle iowait irq softirq steal ...". Guest time is already counted
// in user and nice, so only the first eight fields are summed.
func parseMachineCPU(stat []byte) (busy, total int64, err error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var idle int64
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return total - idle, total, nil
}

// processesCPU is the CPU time used so far by the processes whose command
// name starts with one of names (a local Postgres, kfake-<n>). Processes that ended are
// not counted: a difference of two readings covers the services' long-lived
// processes.
func processesCPU(names []string) time.Duration {
	dirs, _ := os.ReadDir("/proc")
	var total time.Duration
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		name := strings.TrimSpace(string(comm))
		if err != nil || !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(name, n) }) {
			continue
		}
		if t, err := cpuTime(pid); err == nil {
			total += t
		}
	}
	return total
}

// waitAccepting sends requests until one of each provider is answered 200,
// which for hookpipe also means the output has connected, or the timeout
// passes.
func waitAccepting(ctx context.Context, g *generator, s *serverProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	accepted := map[string]bool{}
	conn := newClientConn(g.addr)
	defer conn.close()
	for !accepted["controlshift"] || !accepted["thecity"] {
		if !s.running() {
			return fmt.Errorf("server exited (%v)\n%s", s.waitErr, s.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not answer 200 within %s (last: %s)\n%s", timeout, last, s.logTail())
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		provider, status, err := g.send(rctx, conn)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case permanentRejection(status):
			// Wrong credentials or a request the server will never take:
			// waiting would not help.
			return fmt.Errorf("server rejects %s requests with status %d\n%s", provider, status, s.logTail())
		case status != 200:
			last = fmt.Sprintf("%s: status %d", provider, status)
		default:
			accepted[provider] = true
			continue
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// permanentRejection is a client error that a server still starting up would
// not answer (it answers 503, or refuses the connection).
func permanentRejection(status int) bool {
	return status >= 400 && status < 500 && status != 404 && status != 408 && status != 429
}

// captureProfile asks the engine's debug endpoint for a CPU profile covering
// the next d and writes it to path; the channel reports when it is written.
func captureProfile(ctx context.Context, url string, d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			secs := int(d.Round(time.Second) / time.Second)
			if secs < 1 {
				secs = 1
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s?seconds=%d", url, secs), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %s", url, resp.Status)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return done
}

// batchCounts are the webhook input's counters of message batches and of
// the requests in them.
type batchCounts struct {
	batches, messages float64
	// The engine's timers, in seconds: an input's from handing a batch over
	// to its acknowledgement (input_latency_ns), an output's from taking a
	// batch to its write returning (output_latency_ns), each summed over its
	// label sets (a switch output's cases).
	held, heldSeconds    float64
	writes, writeSeconds float64
}

// addDelta adds what the counters grew by from before to after.
func (c *batchCounts) addDelta(after, before batchCounts) {
	c.batches += after.batches - before.batches
	c.messages += after.messages - before.messages
	c.held += after.held - before.held
	c.heldSeconds += after.heldSeconds - before.heldSeconds
	c.writes += after.writes - before.writes
	c.writeSeconds += after.writeSeconds - before.writeSeconds
}

// readBatchCounts reads the counters off the server's Prometheus endpoint.
// A server without them (the stock engine, no Prometheus) counts zero.
func readBatchCounts(ctx context.Context, url string) (batchCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return batchCounts{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return batchCounts{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return batchCounts{}, err
	case resp.StatusCode == http.StatusNotFound:
		return batchCounts{}, nil // no metrics exporter with an endpoint
	case resp.StatusCode != http.StatusOK:
		return batchCounts{}, fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return parseBatchCounts(string(body))
}

// parseBatchCounts picks the input's batch counters and the engine's input and
// output timers out of the Prometheus text format,
// summed over their label sets.
func parseBatchCounts(text string) (batchCounts, error) {
	var c batchCounts
	// The exporter writes a timer as a histogram in seconds
	// (use_histogram_timing) or as a summary in nanoseconds; the format puts
	// a family's TYPE line before its samples. A timer of neither type is
	// not counted.
	familyTypes := map[string]string{}
	targets := map[string]*float64{
		"webhook_batches_total":        &c.batches,
		"webhook_batch_messages_total": &c.messages,
		"input_latency_ns_count":       &c.held,
		"input_latency_ns_sum":         &c.heldSeconds,
		"output_latency_ns_count":      &c.writes,
		"output_latency_ns_sum":        &c.writeSeconds,
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line[0] == '#' {
			if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
				familyTypes[f[2]] = f[3]
			}
			continue
		}
		nameEnd := strings.IndexAny(line+" ", "{ ")
		name, rest := line[:nameEnd], line[nameEnd:]
		dst, ok := targets[name]
		if !ok {
			continue
		}
		scale := 1.0
		if family, timer := timerFamily(name); timer {
			switch familyTypes[family] {
			case "histogram":
			case "summary":
				if strings.HasSuffix(name, "_sum") {
					scale = 1e-9
				}
			default:
				continue
			}
		}
		// name{labels} value [timestamp]; label values are quoted and may
		// hold spaces and braces, but not an unescaped quote.
		if strings.HasPrefix(rest, "{") {
			rest = rest[labelsEnd(rest):]
		}
		var value string
		if fields := strings.Fields(rest); len(fields) > 0 {
			value = fields[0]
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return batchCounts{}, fmt.Errorf("metric line %q: %q is not a number", line, value)
		}
		*dst += v * scale
	}
	return c, nil
}

// timerFamily is the metric family of a timer's _sum or _count sample.
func timerFamily(name string) (string, bool) {
	if family, ok := strings.CutSuffix(name, "_sum"); ok {
		return family, true
	}
	return strings.CutSuffix(name, "_count")
}

// labelsEnd is the index just past the label set that opens s ("{...}").
func labelsEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == '}':
			return i + 1
		}
	}
	return len(s)
}
