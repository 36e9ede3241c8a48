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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		path  string
		want  int
		conns int64 // connections opened so far
		open  bool  // the connection is kept for the next request
	}{
		{"/length", 202, 1, true},
		{"/chunked", 200, 1, true},
		{"/empty", 204, 1, true},
		{"/length", 202, 1, true},
		{"/close", 503, 1, false},
		{"/chunked", 200, 2, true},
		{"/missing", 404, 2, true},
	} {
		status, err := c.post(ctx, tc.path, "X-Test", "yes", []byte(`{"n":1}`))
		if err != nil || status != tc.want {
			t.Fatalf("%s: status %d, error %v; want %d", tc.path, status, err, tc.want)
		}
		if got := conns.Load(); got != tc.conns {
			t.Fatalf("after %s: %d connections, want %d", tc.path, got, tc.conns)
		}
		if open := c.conn != nil; open != tc.open {
			t.Fatalf("after %s: connection open %v, want %v", tc.path, open, tc.open)
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

func TestClientConnRedialsAnIdleConnectionTheServerClosed(t *testing.T) {
	var requests, accepted atomic.Int64
	// Each connection answers one request, then closes without saying so,
	// as a server does when it drops an idle keep-alive connection.
	addr := rawServer(t, func(_ int, conn net.Conn) {
		accepted.Add(1)
		if readRequest(bufio.NewReader(conn)) {
			requests.Add(1)
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClientConn(addr)
	defer c.close()
	for i := range 3 {
		if i > 0 {
			time.Sleep(idleCheckAfter + 50*time.Millisecond) // idle long enough to be checked
		}
		status, err := c.post(context.Background(), "/", "", "", []byte("{}"))
		if err != nil || status != 200 {
			t.Fatalf("request %d: status %d, error %v", i, status, err)
		}
	}
	if requests.Load() != 3 || accepted.Load() != 3 {
		t.Fatalf("server read %d requests on %d connections, want 3 on 3", requests.Load(), accepted.Load())
	}
}

func TestClientConnKeepsAnIdleConnectionTheServerKeeps(t *testing.T) {
	srv, conns := replies(t)
	c := newClientConn(strings.TrimPrefix(srv.URL, "http://"))
	defer c.close()
	for i := range 2 {
		if i > 0 {
			time.Sleep(idleCheckAfter + 50*time.Millisecond)
		}
		if status, err := c.post(context.Background(), "/length", "X-Test", "yes", []byte(`{"n":1}`)); err != nil || status != 202 {
			t.Fatalf("request %d: status %d, error %v", i, status, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Fatalf("%d connections for two requests on a kept connection, want 1", got)
	}
}

func TestClientConnNeverSendsARequestTwice(t *testing.T) {
	for name, second := range map[string]string{
		"no reply":             "",
		"part of a reply":      "HTTP/1.1 2",
		"headers without body": "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok",
	} {
		t.Run(name, func(t *testing.T) {
			var requests, accepted atomic.Int64
			// The first request is answered; the second is read, then the
			// connection breaks after the given part of its reply.
			addr := rawServer(t, func(_ int, conn net.Conn) {
				accepted.Add(1)
				r := bufio.NewReader(conn)
				if !readRequest(r) {
					return
				}
				requests.Add(1)
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				if readRequest(r) {
					requests.Add(1)
					_, _ = io.WriteString(conn, second)
				}
			})
			c := newClientConn(addr)
			defer c.close()
			if status, err := c.post(context.Background(), "/", "", "", []byte("{}")); err != nil || status != 200 {
				t.Fatalf("first request: status %d, error %v", status, err)
			}
			if _, err := c.post(context.Background(), "/", "", "", []byte("{}")); err == nil {
				t.Fatal("second request: no error")
			}
			time.Sleep(50 * time.Millisecond) // a resend would have been accepted by now
			if requests.Load() != 2 || accepted.Load() != 1 {
				t.Fatalf("server read %d requests on %d connections, want 2 on 1", requests.Load(), accepted.Load())
			}
		})
	}
}

func TestClientConnRejectsMalformedReplies(t *testing.T) {
	for _, reply := range []string{
		"SMTP ready\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 2000\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
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

func TestClientConnKnowsWhenTheServerKeepsTheConnection(t *testing.T) {
	for reply, keep := range map[string]bool{
		"HTTP/1.0 100 Continue\r\n\r\nHTTP/1.0 401 Unauthorized\r\n\r\nno length":                   false,
		"HTTP/1.0 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno":                                  false,
		"HTTP/1.0 401 Unauthorized\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nno":        true,
		"HTTP/1.1 401 Unauthorized\r\nConnection: upgrade, Close\r\nContent-Length: 2\r\n\r\nno":    false,
		"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n": true,
		"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno":                                  true,
	} {
		var requests atomic.Int64
		addr := rawServer(t, func(_ int, conn net.Conn) {
			r := bufio.NewReader(conn)
			for readRequest(r) {
				requests.Add(1)
				if _, err := io.WriteString(conn, reply); err != nil || !keep {
					return
				}
			}
		})
		c := newClientConn(addr)
		for i := range 2 { // the second request on the same or a new connection
			status, err := c.post(context.Background(), "/", "", "", []byte("{}"))
			if err != nil || status != 401 {
				t.Fatalf("%.50q, request %d: status %d, error %v", reply, i, status, err)
			}
			if open := c.conn != nil; open != keep {
				t.Fatalf("%.50q: connection kept %v, want %v", reply, open, keep)
			}
		}
		c.close()
		if requests.Load() != 2 {
			t.Fatalf("%.50q: server read %d requests, want 2", reply, requests.Load())
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

	// Cancelled while the request waits for its reply.
	cancelled, stop := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, stop)
	if _, err := c.post(cancelled, "/", "", "", []byte("{}")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in flight: error %v, want context.Canceled", err)
	}
	if c.conn != nil {
		t.Fatal("connection kept after a cancelled request")
	}
	// Cancelled before it starts.
	if _, err := c.post(cancelled, "/", "", "", []byte("{}")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: error %v", err)
	}
}
