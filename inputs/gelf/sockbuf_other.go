//go:build !linux

package gelf

import "net"

func setReceiveBuffer(c *net.UDPConn, n int) { c.SetReadBuffer(n) }

func receiveBufferErrors() float64 { return 0 }
