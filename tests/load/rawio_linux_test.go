//go:build linux

package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestSocketIOIsRawOnTCP(t *testing.T) {
	client, _ := tcpPair(t)
	if _, ok := socketIO(client).(*rawSocket); !ok {
		t.Fatalf("socketIO(%T) = %T, want *rawSocket", client, socketIO(client))
	}
}

// A write larger than the socket buffers must wait for the reader and still
// deliver every byte in order.
func TestRawSocketWriteWaitsForSlowReader(t *testing.T) {
	client, server := tcpPair(t)
	// A small send buffer, so the write cannot finish before the reader
	// reads (the receive window is far smaller than the payload too).
	client.(*net.TCPConn).SetWriteBuffer(4 << 10)
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the writer fill the buffers
		b, _ := io.ReadAll(server)
		got <- b
	}()
	n, err := socketIO(client).Write(payload)
	if err != nil || n != len(payload) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(payload))
	}
	client.Close()
	if b := <-got; !bytes.Equal(b, payload) {
		t.Fatalf("reader got %d bytes, not the %d written", len(b), len(payload))
	}
}

// A read waits for data that comes later, and reports the end of the stream
// as io.EOF.
func TestRawSocketReadWaitsThenEOF(t *testing.T) {
	client, server := tcpPair(t)
	go func() {
		time.Sleep(20 * time.Millisecond)
		server.Write([]byte("hello"))
		server.Close()
	}()
	b, err := io.ReadAll(socketIO(client))
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadAll = %q, %v; want \"hello\", nil", b, err)
	}
	if n, err := socketIO(client).Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
}

// The connection's deadline ends a read that would wait forever, as with
// net.Conn: cancelling a request relies on it.
func TestRawSocketReadHonoursDeadline(t *testing.T) {
	client, _ := tcpPair(t)
	if err := client.SetDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := socketIO(client).Read(make([]byte, 16))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}

// A deadline set while a write waits for room ends the write, with the count
// of what went out: how a cancelled request in flight is stopped.
func TestRawSocketWriteHonoursDeadline(t *testing.T) {
	client, _ := tcpPair(t)
	client.(*net.TCPConn).SetWriteBuffer(4 << 10)
	go func() {
		time.Sleep(30 * time.Millisecond)
		client.SetDeadline(time.Unix(1, 0))
	}()
	n, err := socketIO(client).Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n <= 0 || n >= 64<<20 {
		t.Fatalf("Write stopped by the deadline = %d, %v; want a partial count and os.ErrDeadlineExceeded", n, err)
	}
}

// A read from a connection the peer reset reports the reset.
func TestRawSocketReadAfterReset(t *testing.T) {
	client, server := tcpPair(t)
	server.(*net.TCPConn).SetLinger(0)
	server.Close()
	_, err := socketIO(client).Read(make([]byte, 16))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after a reset: %v, want ECONNRESET", err)
	}
}

// A write to a connection the peer reset fails rather than hanging.
func TestRawSocketWriteToResetPeerFails(t *testing.T) {
	client, server := tcpPair(t)
	server.(*net.TCPConn).SetLinger(0)
	server.Close()
	time.Sleep(20 * time.Millisecond)
	w := socketIO(client)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = w.Write(make([]byte, 64<<10))
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
}
