package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// requestTimeout bounds one request's round trip.
const requestTimeout = 30 * time.Second

// idleCheckAfter is how long a connection may sit unused before a request
// first makes sure the server has not closed it meanwhile. Under load a
// worker's connection is never idle that long, so the check costs nothing
// there.
const idleCheckAfter = 100 * time.Millisecond

// clientConn is one keep-alive HTTP/1.1 connection of the load generator. A
// request goes out in one write and its reply is read through a buffer, with
// none of net/http's per-request allocations and goroutine hand-offs: on a
// 2-core machine the generator shares a core with the database or broker of
// the scenario, and its own cost must stay small next to the server's.
type clientConn struct {
	addr string // host:port to dial
	conn net.Conn
	io   io.ReadWriter // conn's reads and writes (see socketIO)
	r    *bufio.Reader
	wbuf []byte
	// lastReply is when the last reply on conn was read.
	lastReply time.Time
}

func newClientConn(addr string) *clientConn {
	return &clientConn{addr: addr}
}

func (c *clientConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.io, c.r = nil, nil, nil
	}
}

// errMalformedReply is a reply that is not HTTP/1.x.
var errMalformedReply = errors.New("malformed HTTP reply")

// post sends one POST and returns the reply's status code. The reply body is
// read and discarded, so the connection can carry the next request. A
// request is written once: a connection that failed after the write is not
// retried, since the server may have taken the request. Cancelling ctx
// aborts a request in flight.
func (c *clientConn) post(ctx context.Context, path, headerName, headerValue string, body []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if c.conn != nil && time.Since(c.lastReply) >= idleCheckAfter && !c.alive() {
		c.close()
	}
	if c.conn == nil {
		d := net.Dialer{Timeout: 5 * time.Second, Deadline: deadline}
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.conn, c.io = conn, socketIO(conn)
		c.r = bufio.NewReaderSize(c.io, 4096)
	}
	if ctx.Done() != nil {
		conn := c.conn
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		defer func() {
			if !stop() {
				c.close() // cancelled as the reply came in: its deadline is spent
			}
		}()
	}
	c.wbuf = appendRequest(c.wbuf[:0], c.addr, path, headerName, headerValue, body)
	status, err := c.roundTrip(deadline)
	if err != nil {
		c.close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, ctxErr
		}
		return 0, err
	}
	return status, nil
}

// alive reports whether an idle connection is still open: nothing can be
// waiting to be read on it, so data or the end of the stream means the
// server closed it (or broke the protocol).
func (c *clientConn) alive() bool {
	return c.r.Buffered() == 0 && connOpen(c.conn)
}

// roundTrip writes the prepared request and reads the reply.
func (c *clientConn) roundTrip(deadline time.Time) (int, error) {
	if err := c.conn.SetDeadline(deadline); err != nil {
		return 0, err
	}
	if _, err := c.io.Write(c.wbuf); err != nil {
		return 0, err
	}
	status, keepAlive, err := readReply(c.r)
	if err != nil {
		return 0, err
	}
	if keepAlive {
		c.lastReply = time.Now()
	} else {
		c.close()
	}
	return status, nil
}

// appendRequest appends a POST of body with the generator's headers.
func appendRequest(dst []byte, host, path, headerName, headerValue string, body []byte) []byte {
	dst = append(dst, "POST "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUser-Agent: hookpipe-load\r\nContent-Type: application/json\r\n"...)
	if headerName != "" {
		dst = append(dst, headerName...)
		dst = append(dst, ": "...)
		dst = append(dst, headerValue...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// readReply reads one reply: its status code, and whether the connection
// stays open after it. Interim 1xx replies are skipped. The body, framed by
// Content-Length, chunked encoding or the end of the connection, is read
// and discarded.
func readReply(r *bufio.Reader) (status int, keepAlive bool, err error) {
	for {
		line, err := readLine(r)
		if err != nil {
			return 0, false, err
		}
		// "HTTP/1.1 200 OK"
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
			return 0, false, fmt.Errorf("%w: status line %q", errMalformedReply, line)
		}
		status, err = strconv.Atoi(string(line[9:12]))
		if err != nil || status < 100 {
			return 0, false, fmt.Errorf("%w: status line %q", errMalformedReply, line)
		}
		keepAlive = line[7] == '1'
		length, chunked := int64(-1), false
		var sawClose, sawKeepAlive bool
		for {
			line, err := readLine(r)
			if err != nil {
				return 0, false, err
			}
			if len(line) == 0 {
				break
			}
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return 0, false, fmt.Errorf("%w: header line %q", errMalformedReply, line)
			}
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 || length >= 0 && n != length {
					return 0, false, fmt.Errorf("%w: Content-Length %q", errMalformedReply, value)
				}
				length = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				// The last coding is the framing one.
				codings := bytes.Split(value, []byte(","))
				chunked = bytes.EqualFold(bytes.TrimSpace(codings[len(codings)-1]), []byte("chunked"))
			case bytes.EqualFold(name, []byte("Connection")):
				for _, token := range bytes.Split(value, []byte(",")) {
					token = bytes.TrimSpace(token)
					sawClose = sawClose || bytes.EqualFold(token, []byte("close"))
					sawKeepAlive = sawKeepAlive || bytes.EqualFold(token, []byte("keep-alive"))
				}
			}
		}
		if sawClose {
			keepAlive = false
		} else if sawKeepAlive {
			keepAlive = true
		}
		if status < 200 {
			continue // 100 Continue and the like: the reply follows
		}
		switch {
		case status == 204 || status == 304:
		case chunked:
			err = discardChunked(r)
		case length >= 0:
			_, err = r.Discard(int(length))
		default:
			// Framed by the end of the connection.
			_, err = io.Copy(io.Discard, r)
			keepAlive = false
		}
		if err != nil {
			return 0, false, err
		}
		return status, keepAlive, nil
	}
}

// readLine reads a CRLF- or LF-terminated line, without its terminator.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformedReply, r.Size())
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// discardChunked reads a chunked body and its trailer.
func discardChunked(r *bufio.Reader) error {
	for {
		line, err := readLine(r)
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformedReply, line)
		}
		if n == 0 {
			for {
				line, err := readLine(r)
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if _, err := r.Discard(int(n)); err != nil {
			return err
		}
		line, err = readLine(r)
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return fmt.Errorf("%w: no CRLF after a chunk", errMalformedReply)
		}
	}
}
