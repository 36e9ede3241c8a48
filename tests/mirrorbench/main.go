// Command mirrorbench measures the bulk-data mirror loader against psql's
// \copy of the same file, in the same run, on the same Postgres:
//
//	go run ./tests/mirrorbench [-rows 1000000] [-small 100000] [-rounds 2]
//
// It generates a CSV of -rows rows × 10 columns, then, alternately for
// -rounds rounds, loads it with `psql \copy` into a table with a primary key
// and with the mirror's full load (download over HTTP from a local server,
// COPY, primary key, swap), each into a fresh table, and prints the best
// rows/s of each and their ratio. The loader runs in a child process so its
// peak RSS is its own; it is measured for a -small file and the -rows file
// to show that memory does not grow with the file.
//
// Postgres comes from tests/harness: HOOKPIPE_TEST_PG_DSN, the PG*
// variables, 127.0.0.1:5432, or a throwaway cluster.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/plugins/mirror"
	"github.com/hookpipe/hookpipe/plugins/mirror/mirrortest"
	"github.com/hookpipe/hookpipe/tests/harness"
)

// Environment of the child process that runs one load.
const (
	envChild = "MIRRORBENCH_CHILD"
	envDSN   = "MIRRORBENCH_DSN" // not on the command line: a DSN may hold a password
)

type childJob struct {
	URL, Table, Kind string
}

type childResult struct {
	Rows, Bytes int64
	Seconds     float64
	Skipped     bool
	Error       string
}

func main() {
	if os.Getenv(envChild) != "" {
		os.Exit(child())
	}
	rows := flag.Int("rows", 1_000_000, "rows of the benchmark file")
	small := flag.Int("small", 100_000, "rows of the smaller file, for peak RSS only")
	rounds := flag.Int("rounds", 2, "alternating rounds of psql \\copy and the loader; the best of each counts")
	incremental := flag.Bool("incremental", true, "also time an incremental upsert of the file onto the loaded table")
	flag.Parse()

	tb := &commandTB{name: "mirrorbench"}
	defer tb.cleanup()
	if err := run(tb, *rows, *small, *rounds, *incremental); err != nil {
		tb.cleanup()
		fmt.Fprintln(os.Stderr, "mirrorbench:", err)
		os.Exit(1)
	}
}

func run(tb *commandTB, rows, small, rounds int, incremental bool) error {
	psql, err := exec.LookPath("psql")
	if err != nil {
		return fmt.Errorf("psql is needed (apt-get install postgresql-client): %w", err)
	}
	pg := harness.Postgres(tb)
	fmt.Printf("postgres: %s; %d CPUs, %s\n", pg.Source, runtime.NumCPU(), runtime.Version())

	dir := tb.TempDir()
	bigPath := filepath.Join(dir, "big.csv")
	size, err := mirrortest.WriteRowsFile(bigPath, rows)
	if err != nil {
		return err
	}
	smallPath := filepath.Join(dir, "small.csv")
	smallSize, err := mirrortest.WriteRowsFile(smallPath, small)
	if err != nil {
		return err
	}
	fmt.Printf("file: %s (generated)\n\n", mirrortest.Describe(rows, size))

	srv := mirrortest.NewServer()
	defer srv.Close()
	srv.AddFile("big.csv", bigPath)
	srv.AddFile("small.csv", smallPath)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	load := func(name, table, kind string) (childResult, int64, error) {
		job, _ := json.Marshal(childJob{URL: srv.URL(name), Table: table, Kind: kind})
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), envChild+"="+string(job), envDSN+"="+pg.DSN)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return childResult{}, 0, fmt.Errorf("loader process: %w", err)
		}
		var res childResult
		if err := json.Unmarshal(out, &res); err != nil {
			return res, 0, fmt.Errorf("loader process printed %q: %w", out, err)
		}
		if res.Error != "" {
			return res, 0, errors.New(res.Error)
		}
		if res.Skipped {
			return res, 0, fmt.Errorf("the %s load of %s was skipped as already loaded", kind, table)
		}
		// Linux reports ru_maxrss in KiB.
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
		return res, rss, nil
	}
	sql := func(q string) error {
		_, err := pg.PsqlErr(q)
		return err
	}

	// The reference: psql's \copy into a table with a primary key, the end
	// state the mirror's full load also produces.
	cols := strings.Split(mirrortest.GeneratedHeader, ",")
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = c + " text"
	}
	copyOnce := func(withKey bool) (time.Duration, error) {
		key := ""
		if withKey {
			key = ", PRIMARY KEY (id)"
		}
		if err := sql("DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (" + strings.Join(defs, ", ") + key + "); CHECKPOINT"); err != nil {
			return 0, err
		}
		start := time.Now()
		cmd := exec.Command(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.DSN,
			"-c", `\copy bench_copy FROM '`+bigPath+`' WITH (FORMAT csv, HEADER true)`)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("psql \\copy: %v: %s", err, out)
		}
		return time.Since(start), nil
	}
	loadOnce := func() (float64, int64, error) {
		// A fresh table each time, as for psql: drop the previous version
		// and its load record.
		if err := sql("DROP SCHEMA IF EXISTS controlshift CASCADE; CHECKPOINT"); err != nil {
			return 0, 0, err
		}
		res, rss, err := load("big.csv", "signatures", "full")
		if err != nil {
			return 0, 0, err
		}
		if res.Rows != int64(rows) {
			return 0, 0, fmt.Errorf("loader loaded %d rows, want %d", res.Rows, rows)
		}
		return res.Seconds, rss, nil
	}

	bestCopy, bestLoad := time.Duration(1<<62), 1e18
	var bigRSS int64
	for r := 1; r <= rounds; r++ {
		d, err := copyOnce(true)
		if err != nil {
			return err
		}
		s, rss, err := loadOnce()
		if err != nil {
			return err
		}
		fmt.Printf("round %d: psql \\copy %6.2f s   mirror full load %6.2f s\n", r, d.Seconds(), s)
		bestCopy, bestLoad = min(bestCopy, d), min(bestLoad, s)
		bigRSS = max(bigRSS, rss)
	}
	noKey, err := copyOnce(false)
	if err != nil {
		return err
	}
	if err := sql("DROP TABLE IF EXISTS bench_copy"); err != nil {
		return err
	}

	copyRate := float64(rows) / bestCopy.Seconds()
	loadRate := float64(rows) / bestLoad
	fmt.Printf("\n%-58s %8.0f rows/s  (%.2f s)\n", `psql \copy, table with primary key (reference)`, copyRate, bestCopy.Seconds())
	fmt.Printf("%-58s %8.0f rows/s  (%.2f s)\n", `psql \copy, table without index (for comparison)`, float64(rows)/noKey.Seconds(), noKey.Seconds())
	fmt.Printf("%-58s %8.0f rows/s  (%.2f s)\n", "mirror full load (HTTP + COPY + primary key + swap)", loadRate, bestLoad)
	verdict := "met"
	if loadRate < 0.9*copyRate {
		verdict = "NOT met"
	}
	fmt.Printf("ratio mirror / psql \\copy: %.2f× (target ≥ 0.90×: %s)\n", loadRate/copyRate, verdict)

	if incremental {
		// The table holds the file already: every row is an update.
		res, _, err := load("big.csv", "signatures", "incremental")
		if err != nil {
			return err
		}
		if res.Rows != int64(rows) {
			return fmt.Errorf("incremental load took %d rows, want %d", res.Rows, rows)
		}
		fmt.Printf("%-58s %8.0f rows/s  (%.2f s)\n", "mirror incremental upsert of the same file (all updates)", float64(res.Rows)/res.Seconds, res.Seconds)
	}

	if err := sql("DROP SCHEMA IF EXISTS controlshift CASCADE"); err != nil {
		return err
	}
	_, smallRSS, err := load("small.csv", "signatures", "full")
	if err != nil {
		return err
	}
	fmt.Printf("\npeak RSS of the loader process: %s file: %.1f MiB; %s file: %.1f MiB\n",
		mirrortest.Describe(small, smallSize), float64(smallRSS)/(1<<20),
		mirrortest.Describe(rows, size), float64(bigRSS)/(1<<20))
	return nil
}

// child runs one load and prints its result as JSON.
func child() int {
	var job childJob
	if err := json.Unmarshal([]byte(os.Getenv(envChild)), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l, err := mirror.NewLoader(mirror.Config{
		DSN: os.Getenv(envDSN), Schema: "controlshift", PrimaryKey: "id", MaxConns: 1,
		HTTP: mirror.HTTPConfig{ResponseHeaderTimeout: 30 * time.Second, ReadIdleTimeout: 60 * time.Second},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer l.Close()
	res, err := l.Load(context.Background(), mirror.Job{Table: job.Table, URL: job.URL, Kind: mirror.Kind(job.Kind)})
	out := childResult{Rows: res.Rows, Bytes: res.Bytes, Seconds: res.Duration.Seconds(), Skipped: res.Skipped}
	if err != nil {
		out.Error = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// commandTB lets a command use tests/harness, which takes a testing.TB.
// The embedded interface is nil: only the methods below are ever called.
type commandTB struct {
	testing.TB
	name     string
	cleanups []func()
	dirs     []string
}

func (c *commandTB) Helper()                   {}
func (c *commandTB) Name() string              { return c.name }
func (c *commandTB) Cleanup(f func())          { c.cleanups = append(c.cleanups, f) }
func (c *commandTB) Log(args ...any)           {}
func (c *commandTB) Logf(string, ...any)       {}
func (c *commandTB) Errorf(f string, a ...any) { c.Fatalf(f, a...) }
func (c *commandTB) Fatal(args ...any)         { c.Fatalf("%s", fmt.Sprint(args...)) }

func (c *commandTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mirrorbench: "+format+"\n", args...)
	c.cleanup()
	os.Exit(1)
}

func (c *commandTB) TempDir() string {
	dir, err := os.MkdirTemp("", "mirrorbench-")
	if err != nil {
		c.Fatalf("%v", err)
	}
	c.dirs = append(c.dirs, dir)
	return dir
}

func (c *commandTB) cleanup() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.cleanups = nil
	for _, d := range c.dirs {
		os.RemoveAll(d)
	}
	c.dirs = nil
}
