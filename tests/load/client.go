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

// clientConn is one keep-alive HTTP/1.1 connection of the load generator. A
// request goes out in one write and its reply is read through a buffer, with
// none of net/http's per-request allocations and goroutine hand-offs: on a
// 2-core machine the generator shares a core with the database or broker of
// the scenario, and its own cost must stay small next to the server's.
type clientConn struct {
	addr string // host:port to dial
	conn net.Conn
	r    *bufio.Reader
	wbuf []byte
	// reused is set once a reply has been read on conn: a later failure
	// before any reply byte may be the server having closed it while idle.
	reused bool
}

func newClientConn(addr string) *clientConn {
	return &clientConn{addr: addr}
}

func (c *clientConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r, c.reused = nil, nil, false
	}
}

// errMalformedReply is a reply that is not HTTP/1.x.
var errMalformedReply = errors.New("malformed HTTP reply")

// post sends one POST and returns the reply's status code. The reply body is
// read and discarded, so the connection can carry the next request. A
// request that fails on a reused connection before any reply byte arrived is
// sent once more on a new one, as net/http's client does.
func (c *clientConn) post(ctx context.Context, path, headerName, headerValue string, body []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.wbuf = appendRequest(c.wbuf[:0], c.addr, path, headerName, headerValue, body)
	for attempt := 0; ; attempt++ {
		retry := c.conn != nil && c.reused && attempt == 0
		status, replied, err := c.roundTrip(deadline)
		if err == nil {
			return status, nil
		}
		c.close()
		if !retry || replied {
			return 0, err
		}
	}
}

// roundTrip writes the prepared request and reads the reply. replied says
// whether any byte of the reply arrived.
func (c *clientConn) roundTrip(deadline time.Time) (status int, replied bool, err error) {
	if c.conn == nil {
		d := net.Dialer{Timeout: 5 * time.Second, Deadline: deadline}
		conn, err := d.Dial("tcp", c.addr)
		if err != nil {
			return 0, false, err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 4096)
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	if _, err := c.conn.Write(c.wbuf); err != nil {
		return 0, false, err
	}
	if _, err := c.r.Peek(1); err != nil {
		return 0, false, err
	}
	status, keepAlive, err := readReply(c.r)
	if err != nil {
		return 0, true, err
	}
	if !keepAlive {
		c.close()
	} else {
		c.reused = true
	}
	return status, true, nil
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
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return 0, false, fmt.Errorf("%w: status line %q", errMalformedReply, line)
		}
		status, err = strconv.Atoi(string(line[9:12]))
		if err != nil || status < 100 {
			return 0, false, fmt.Errorf("%w: status line %q", errMalformedReply, line)
		}
		keepAlive = line[7] == '1'
		length, chunked := int64(-1), false
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
				length, err = strconv.ParseInt(string(value), 10, 64)
				if err != nil || length < 0 {
					return 0, false, fmt.Errorf("%w: Content-Length %q", errMalformedReply, value)
				}
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				chunked = bytes.EqualFold(value, []byte("chunked"))
			case bytes.EqualFold(name, []byte("Connection")):
				if bytes.EqualFold(value, []byte("close")) {
					keepAlive = false
				} else if bytes.EqualFold(value, []byte("keep-alive")) {
					keepAlive = true
				}
			}
		}
		if status < 200 && status != 101 {
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
