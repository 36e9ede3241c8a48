//go:build unix

package main

import (
	"errors"
	"net"
	"syscall"
)

// connOpen peeks at the socket without blocking: EAGAIN means open and
// quiet; the end of the stream, data or an error mean it cannot carry a
// new request.
func connOpen(conn net.Conn) bool {
	if _, ok := conn.(syscall.Conn); !ok {
		return true // nothing to peek at
	}
	raw, ok := rawConn(conn)
	if !ok {
		return false
	}
	open := false
	err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)
		return true // never wait
	})
	return err == nil && open
}

// rawConn is conn's descriptor access, when it offers one.
func rawConn(conn net.Conn) (syscall.RawConn, bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}
