package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables that choose which Postgres the tests use.
const (
	// EnvPostgresDSN names an existing server (URL or key=value form) whose
	// role may create databases.
	EnvPostgresDSN = "HOOKPIPE_TEST_PG_DSN"
	// EnvPostgresForceThrowaway, when "1", ignores any existing server and
	// starts a throwaway cluster.
	EnvPostgresForceThrowaway = "HOOKPIPE_TEST_PG_FORCE_THROWAWAY"
)

// pgEnvVars are the libpq variables whose presence means "use the server they
// describe". Both pgx and psql read them directly, so their values (the
// password in particular) never need to appear in a DSN.
var pgEnvVars = []string{"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"}

// PostgresServer is a Postgres database prepared for one test: a fresh
// database on some server, dropped when the test ends.
type PostgresServer struct {
	// DSN connects to the test's own database: a postgres:// URL, or the
	// key=value form when HOOKPIPE_TEST_PG_DSN used it. Unless that variable
	// held one, it carries no password (PGPASSWORD stays in the environment).
	DSN string
	// Database is the name of the test's own database.
	Database string
	// Source says where the server came from, for test logs.
	Source string

	adminDSN string
	cluster  *pgCluster
}

// Postgres returns a fresh database for the test. The server is, in order:
// the one named by HOOKPIPE_TEST_PG_DSN; the one described by the standard
// PG* variables; one already listening on 127.0.0.1:5432 with trust auth for
// the user postgres; otherwise a throwaway cluster started for this test and
// stopped when it ends. HOOKPIPE_TEST_PG_FORCE_THROWAWAY=1 skips straight to
// the throwaway cluster. A server that was named explicitly but cannot be
// reached fails the test.
func Postgres(t testing.TB) *PostgresServer {
	t.Helper()
	if os.Getenv(EnvPostgresForceThrowaway) == "1" {
		return StartThrowawayPostgres(t)
	}
	if dsn := os.Getenv(EnvPostgresDSN); dsn != "" {
		return newTestDatabase(t, dsn, EnvPostgresDSN, nil)
	}
	for _, v := range pgEnvVars {
		if os.Getenv(v) != "" {
			admin := "postgres:///" + url.PathEscape(envOr("PGDATABASE", "postgres"))
			return newTestDatabase(t, admin, "PG* environment", nil)
		}
	}
	const local = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	if err := pgPing(local); err == nil {
		return newTestDatabase(t, local, "127.0.0.1:5432", nil)
	} else if WaitTCP("127.0.0.1:5432", 200*time.Millisecond) == nil {
		t.Logf("harness: 127.0.0.1:5432 listens but refused user postgres (%v); starting a throwaway cluster", err)
	}
	return StartThrowawayPostgres(t)
}

// StartThrowawayPostgres always starts a new cluster for this test (initdb
// and pg_ctl into a temp dir, on a free 127.0.0.1 port) with a fresh
// database, and removes it when the test ends. Its Stop and Start methods
// let a test take the server away and bring it back.
func StartThrowawayPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	c := startCluster(t)
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	return newTestDatabase(t, admin, "throwaway cluster", c)
}

// Stop shuts the throwaway cluster down (fast mode: clients are
// disconnected). It fails the test for a server the harness did not start.
func (p *PostgresServer) Stop(t testing.TB) {
	t.Helper()
	if p.cluster == nil {
		t.Fatalf("harness: Stop needs a server from StartThrowawayPostgres")
	}
	if out, err := p.cluster.ctl("-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		t.Fatalf("harness: pg_ctl stop: %v\n%s\nlog tail:\n%s", err, out, TailFile(p.cluster.logPath, 2000))
	}
}

// Start brings a stopped throwaway cluster back on the same port.
func (p *PostgresServer) Start(t testing.TB) {
	t.Helper()
	if p.cluster == nil {
		t.Fatalf("harness: Start needs a server from StartThrowawayPostgres")
	}
	p.cluster.start(t)
}

// Psql runs SQL through the psql CLI against the test's database and returns
// its unaligned, tuples-only output ("|" between columns, one row a line).
// Any error fails the test.
func (p *PostgresServer) Psql(t testing.TB, query string) string {
	t.Helper()
	out, err := p.PsqlErr(query)
	if err != nil {
		t.Fatalf("harness: psql %q: %v", query, err)
	}
	return out
}

// PsqlErr is Psql returning the error instead of failing the test.
func (p *PostgresServer) PsqlErr(query string) (string, error) {
	bin, err := pgBinary("psql")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", p.DSN, "-c", query)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimRight(stdout.String(), "\n"), nil
}

// newTestDatabase creates a database of its own for the test on the server
// reached by adminDSN and drops it at cleanup.
func newTestDatabase(t testing.TB, adminDSN, source string, c *pgCluster) *PostgresServer {
	t.Helper()
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "hookpipe_test_" + hex.EncodeToString(suffix[:])

	if err := pgExec(adminDSN, "CREATE DATABASE "+name); err != nil {
		tail := ""
		if c != nil {
			tail = "\nlog tail:\n" + TailFile(c.logPath, 2000)
		}
		t.Fatalf("harness: postgres from %s: creating database %s: %v%s", source, name, err, tail)
	}
	t.Cleanup(func() {
		if c != nil {
			return // the whole cluster is removed
		}
		err := pgExec(adminDSN, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		if err != nil {
			// WITH (FORCE) needs Postgres 13.
			err = pgExec(adminDSN, "DROP DATABASE IF EXISTS "+name)
		}
		if err != nil {
			t.Logf("harness: dropping database %s: %v", name, err)
		}
	})
	t.Logf("harness: postgres from %s, database %s", source, name)
	return &PostgresServer{
		DSN:      withDatabase(adminDSN, name),
		Database: name,
		Source:   source,
		adminDSN: adminDSN,
		cluster:  c,
	}
}

// withDatabase points a DSN in URL or key=value form at another database.
func withDatabase(dsn, db string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + db
			u.RawPath = ""
			return u.String()
		}
	}
	// In key=value form the last dbname wins.
	return dsn + " dbname=" + db
}

func pgConnect(dsn string, timeout time.Duration) (*pgx.Conn, context.Context, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return conn, ctx, cancel, nil
}

func pgPing(dsn string) error {
	conn, ctx, cancel, err := pgConnect(dsn, 2*time.Second)
	if err != nil {
		return err
	}
	defer cancel()
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

func pgExec(dsn, stmt string) error {
	conn, ctx, cancel, err := pgConnect(dsn, 30*time.Second)
	if err != nil {
		return err
	}
	defer cancel()
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// pgBinary finds a Postgres program on PATH or in the newest
// /usr/lib/postgresql/*/bin.
func pgBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin (install the postgresql package)", name)
}

func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// pgCluster is a throwaway cluster in a temp dir.
type pgCluster struct {
	initdb, pgctl string
	dir           string // owned by the server's user; removed at cleanup
	dataDir       string
	sockDir       string
	logPath       string
	port          int
	runAs         string // "" to run as ourselves
}

func startCluster(t testing.TB) *pgCluster {
	t.Helper()
	c := &pgCluster{}
	var err error
	if c.initdb, err = pgServerBinary("initdb"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	c.pgctl = filepath.Join(filepath.Dir(c.initdb), "pg_ctl")

	// Postgres refuses to run as root, so as root the cluster belongs to the
	// postgres user. t.TempDir is not reachable by that user, hence MkdirTemp.
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("harness: running as root needs a postgres user to own the cluster: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Fatalf("harness: runuser (util-linux) is needed to start Postgres as root: %v", err)
		}
		c.runAs = "postgres"
	}
	if c.dir, err = os.MkdirTemp("", "hookpipe-pg-"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.ctl("-m", "immediate", "-w", "-t", "30", "stop")
		_ = os.RemoveAll(c.dir)
	})
	c.dataDir = filepath.Join(c.dir, "data")
	c.sockDir = filepath.Join(c.dir, "sock")
	c.logPath = filepath.Join(c.dir, "postgres.log")
	if err := os.Mkdir(c.sockDir, 0o700); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if uid >= 0 {
		for _, p := range []string{c.dir, c.sockDir} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatalf("harness: chown %s: %v", p, err)
			}
		}
	}

	out, err := c.run(c.initdb, "-D", c.dataDir, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if err != nil {
		t.Fatalf("harness: initdb: %v\n%s", err, out)
	}
	c.port = FreePort(t)
	c.start(t)
	return c
}

// pgServerBinary finds initdb/pg_ctl as a pair from the same installation,
// preferring the versioned directories over PATH (where Debian only has
// wrappers).
func pgServerBinary(name string) (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in /usr/lib/postgresql/*/bin or on PATH (install the postgresql package)", name)
}

func (c *pgCluster) start(t testing.TB) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", c.port, c.sockDir)
	out, err := c.ctl("-l", c.logPath, "-o", opts, "-w", "-t", "60", "start")
	if err == nil {
		err = WaitTCP(net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)), 30*time.Second)
	}
	if err != nil {
		t.Fatalf("harness: pg_ctl start: %v\n%s\nlog tail:\n%s", err, out, TailFile(c.logPath, 2000))
	}
}

func (c *pgCluster) ctl(args ...string) (string, error) {
	return c.run(c.pgctl, append([]string{"-D", c.dataDir}, args...)...)
}

// run runs a server program as the cluster's owner.
func (c *pgCluster) run(bin string, args ...string) (string, error) {
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.runAs, "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		err = fmt.Errorf("%s: %w", filepath.Base(bin), err)
	}
	return string(out), err
}
