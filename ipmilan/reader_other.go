//go:build !linux

package ipmilan

import "net"

// startPoller is Linux only (reader_linux.go): elsewhere each session's
// socket has a readLoop goroutine of its own.
func (s *Session) startPoller(*net.UDPConn) bool { return false }
