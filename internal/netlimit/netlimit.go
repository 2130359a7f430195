// Package netlimit bounds the connections a listener holds. Past the limit
// a new connection is closed at once (and counted) instead of waiting in the
// accept queue: a thousand idle or slow clients cannot use up the process's
// file descriptors, and those beyond the limit learn it immediately.
package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener holding at most Max connections at once.
type Listener struct {
	net.Listener
	max      int64
	active   atomic.Int64
	rejected func() // called for each connection closed for the limit
}

// Listen wraps ln; onReject (may be nil) is called for each connection
// closed because max were open.
func Listen(ln net.Listener, max int, onReject func()) *Listener {
	return &Listener{Listener: ln, max: int64(max), rejected: onReject}
}

// Accept returns the next connection within the limit.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) > l.max {
			l.active.Add(-1)
			c.Close()
			if l.rejected != nil {
				l.rejected()
			}
			continue
		}
		return &conn{Conn: c, l: l}, nil
	}
}

// Active is the number of connections held now.
func (l *Listener) Active() int { return int(l.active.Load()) }

type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.active.Add(-1) })
	return err
}
