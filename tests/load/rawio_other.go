//go:build !linux

package main

import (
	"io"
	"net"
)

// socketIO is conn itself: raw socket calls are used on Linux only.
func socketIO(conn net.Conn) io.ReadWriter { return conn }
