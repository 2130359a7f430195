//go:build linux

package gelf

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// setReceiveBuffer asks for n bytes of socket receive buffer, past
// net.core.rmem_max with SO_RCVBUFFORCE when the process may (root or
// CAP_NET_ADMIN), else as much as SO_RCVBUF gives.
func setReceiveBuffer(c *net.UDPConn, n int) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n) != nil {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
	})
}

// receiveBufferErrors reads the kernel's UDP RcvbufErrors counter (all
// sockets of the host or network namespace): datagrams dropped because a
// receive buffer was full.
func receiveBufferErrors() float64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseFloat(f[i], 64)
				return v
			}
		}
	}
	return 0
}
