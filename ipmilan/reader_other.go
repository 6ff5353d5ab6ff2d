//go:build !linux

package ipmilan

import "net"

// dialPolled is Linux only (reader_linux.go): elsewhere each session's
// socket is a net.UDPConn with a readLoop goroutine of its own.
func (s *Session) dialPolled(*net.UDPAddr) bool { return false }
