//go:build linux

package main

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawSocket reads and writes a non-blocking socket with raw system calls,
// waiting in the runtime's poller when it is not ready, as a net.Conn does.
// The difference is the bookkeeping: a net.Conn tells the runtime each call
// may block, and a call that outlasts the runtime's monitor interval (20 µs
// and up) gets the processor handed to another thread and taken back after.
// On a machine where system calls and context switches are dear, a loopback
// write can last that long, and with the generator pinned to one CPU
// (GOMAXPROCS 1) the hand-overs cost the core it shares with the scenario's
// database or broker more than the calls. A raw call is invisible to the
// runtime, which is acceptable only because the socket never blocks.
type rawSocket struct {
	rc syscall.RawConn
}

// socketIO is the reader and writer of conn: a rawSocket where the
// connection offers its descriptor, else conn itself.
func socketIO(conn net.Conn) io.ReadWriter {
	if rc, ok := rawConn(conn); ok {
		return &rawSocket{rc: rc}
	}
	return conn
}

func (s *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EAGAIN:
				return false // wait until readable
			case syscall.EINTR:
				continue
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (s *rawSocket) Write(p []byte) (int, error) {
	var written int
	var errno syscall.Errno
	err := s.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[written])), uintptr(len(p)-written))
			switch e {
			case 0:
				written += int(r)
			case syscall.EAGAIN:
				return false // wait until writable, then go on
			case syscall.EINTR:
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = errno
	}
	return written, err
}
