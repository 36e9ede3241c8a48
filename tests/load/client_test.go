package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// replies serves each path's kind of reply with net/http's own server.
func replies(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("X-Test") != "yes" || r.ContentLength != int64(len(body)) || string(body) != `{"n":1}` {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5000")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(strings.Repeat("x", 5000)))
		case "/chunked":
			w.WriteHeader(http.StatusOK)
			for range 3 {
				_, _ = w.Write([]byte(strings.Repeat("y", 3000)))
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("bye"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestClientConnReadsEveryFraming(t *testing.T) {
	srv, conns := replies(t)
	c := newClientConn(strings.TrimPrefix(srv.URL, "http://"))
	defer c.close()
	ctx := context.Background()
	for _, tc := range []struct {
		path  string
		want  int
		conns int64 // connections opened so far
	}{
		{"/length", 202, 1},
		{"/chunked", 200, 1},
		{"/empty", 204, 1},
		{"/length", 202, 1},
		{"/close", 503, 1}, // the server closes after this reply
		{"/chunked", 200, 2},
		{"/missing", 404, 2},
	} {
		status, err := c.post(ctx, tc.path, "X-Test", "yes", []byte(`{"n":1}`))
		if err != nil || status != tc.want {
			t.Fatalf("%s: status %d, error %v; want %d", tc.path, status, err, tc.want)
		}
		if got := conns.Load(); got != tc.conns {
			t.Fatalf("after %s: %d connections, want %d", tc.path, got, tc.conns)
		}
	}
}

// rawServer runs handle for each accepted connection.
func rawServer(t *testing.T, handle func(n int, conn net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 1; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				handle(n, conn)
			}()
		}
	}()
	return ln.Addr().String()
}

// readRequest reads one request off conn, or returns false at its end.
func readRequest(r *bufio.Reader) bool {
	req, err := http.ReadRequest(r)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err == nil
}

func TestClientConnResendsOnlyWhenAnIdleConnectionWasClosed(t *testing.T) {
	var requests atomic.Int64
	// Each connection answers one request, then closes without saying so,
	// as a server does when it drops an idle keep-alive connection.
	addr := rawServer(t, func(_ int, conn net.Conn) {
		if readRequest(bufio.NewReader(conn)) {
			requests.Add(1)
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClientConn(addr)
	defer c.close()
	for i := range 3 {
		status, err := c.post(context.Background(), "/", "", "", []byte("{}"))
		if err != nil || status != 200 {
			t.Fatalf("request %d: status %d, error %v", i, status, err)
		}
	}
	if got := requests.Load(); got != 3 {
		t.Fatalf("server read %d requests, want 3", got)
	}

	// A new connection that closes before replying is an error, not sent again.
	var accepted atomic.Int64
	addr = rawServer(t, func(_ int, conn net.Conn) {
		accepted.Add(1)
		readRequest(bufio.NewReader(conn))
	})
	c2 := newClientConn(addr)
	defer c2.close()
	_, err := c2.post(context.Background(), "/", "", "", []byte("{}"))
	if !errors.Is(err, io.EOF) || transportKind(err) != "eof" {
		t.Fatalf("error %v (%s), want EOF", err, transportKind(err))
	}
	time.Sleep(50 * time.Millisecond)
	if got := accepted.Load(); got != 1 {
		t.Fatalf("%d connections for one request on a new connection, want 1", got)
	}
}

func TestClientConnRejectsMalformedReplies(t *testing.T) {
	for _, reply := range []string{
		"SMTP ready\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 5000) + "\r\n\r\n",
	} {
		addr := rawServer(t, func(_ int, conn net.Conn) {
			if readRequest(bufio.NewReader(conn)) {
				_, _ = io.WriteString(conn, reply)
			}
		})
		c := newClientConn(addr)
		_, err := c.post(context.Background(), "/", "", "", []byte("{}"))
		c.close()
		if !errors.Is(err, errMalformedReply) || transportKind(err) != "malformed-reply" {
			t.Errorf("%.40q: error %v, want a malformed reply", reply, err)
		}
	}
}

func TestClientConnReadsAReplyFramedByTheConnection(t *testing.T) {
	addr := rawServer(t, func(_ int, conn net.Conn) {
		if readRequest(bufio.NewReader(conn)) {
			_, _ = io.WriteString(conn, "HTTP/1.0 100 Continue\r\n\r\nHTTP/1.0 401 Unauthorized\r\n\r\nno length")
		}
	})
	c := newClientConn(addr)
	defer c.close()
	for range 2 { // the second request on a new connection
		status, err := c.post(context.Background(), "/", "", "", []byte("{}"))
		if err != nil || status != 401 {
			t.Fatalf("status %d, error %v", status, err)
		}
		if c.conn != nil {
			t.Fatal("connection kept after a reply framed by its end")
		}
	}
}

func TestClientConnStopsAtTheContextDeadline(t *testing.T) {
	addr := rawServer(t, func(_ int, conn net.Conn) {
		readRequest(bufio.NewReader(conn))
		time.Sleep(2 * time.Second) // never replies in time
	})
	c := newClientConn(addr)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.post(ctx, "/", "", "", []byte("{}"))
	if transportKind(err) != "timeout" {
		t.Fatalf("error %v (%s), want a timeout", err, transportKind(err))
	}
	cancelled, stop := context.WithCancel(context.Background())
	stop()
	if _, err := c.post(cancelled, "/", "", "", []byte("{}")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: error %v", err)
	}
}
