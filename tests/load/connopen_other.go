//go:build !unix

package main

import "net"

// connOpen cannot peek here: a connection is taken as open.
func connOpen(net.Conn) bool { return true }
