// Package gelftest sends GELF the way a busy Docker host does, for tests.
package gelftest

import (
	"fmt"
	"net"
	"time"
)

// SendBurst sends n uncompressed GELF datagrams to addr over about d (in
// steps of 1 ms), numbered from `from`: each message's short_message is an
// application's JSON line with "n" set to its number.
func SendBurst(addr string, from, n int, d time.Duration) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	steps := max(int(d/time.Millisecond), 1)
	per := (n + steps - 1) / steps
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := fmt.Fprintf(c, `{"version":"1.1","host":"node-1","short_message":"{\"level\":\"info\",\"msg\":\"burst %d\",\"n\":%d}","timestamp":%.3f,"level":6,"_container_name":"orders"}`,
			from+i, from+i, float64(time.Now().UnixMilli())/1000); err != nil {
			return err
		}
		if (i+1)%per == 0 {
			if wait := time.Duration((i+1)/per)*time.Millisecond - time.Since(start); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
	return nil
}
