// Package connserve serves the connections of a stream listener (the
// forward and syslog inputs' TCP): a goroutine per connection, at most max
// held at once (netlimit: the ones past it are closed at once), and a Close
// that wakes the readers waiting between messages and waits for every
// handler to return.
package connserve

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logweave/logweave/internal/netlimit"
)

// Server serves the connections of one listener.
type Server struct {
	ln      net.Listener
	tls     *tls.Config
	handle  func(net.Conn)
	log     *slog.Logger
	closing atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

// New serves ln (once Serve is called), holding at most max connections
// (onReject is called for each closed past it), over TLS when tc is not
// nil (a handshake must end within handshakeTimeout).
func New(ln net.Listener, max int, onReject func(), tc *tls.Config, log *slog.Logger) *Server {
	return &Server{ln: netlimit.Listen(ln, max, onReject), tls: tc, log: log, conns: map[net.Conn]struct{}{}}
}

// handshakeTimeout bounds a TLS handshake: a client that connects and
// says nothing does not hold its connection slot.
const handshakeTimeout = 10 * time.Second

// Serve starts accepting and runs handle for each connection in its own
// goroutine; the connection is closed when handle returns.
func (s *Server) Serve(handle func(net.Conn)) {
	s.handle = handle
	s.wg.Add(1)
	go s.accept()
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Closing reports whether Close was called: a handler between messages
// returns.
func (s *Server) Closing() bool { return s.closing.Load() }

// Close stops accepting, wakes the handlers reading (their reads fail, so
// one between messages returns; see TimeoutReader) and waits for them.
func (s *Server) Close() error {
	s.closing.Store(true)
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return
			}
			s.log.Warn("accept", "addr", s.ln.Addr().String(), "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.tls != nil {
				tc := tls.Server(c, s.tls)
				tc.SetDeadline(time.Now().Add(handshakeTimeout))
				if err := tc.Handshake(); err != nil {
					s.log.Debug("TLS handshake failed", "from", c.RemoteAddr().String(), "error", err)
				} else {
					tc.SetDeadline(time.Time{})
					s.handle(tc)
				}
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				tc.Close()
				return
			}
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// TimeoutReader reads a connection giving a message begun (Begun set by
// the reader of messages) Timeout to arrive whole; between messages it
// waits without limit, until Close.
type TimeoutReader struct {
	Conn    net.Conn
	Timeout time.Duration
	Begun   bool
	Server  *Server // between messages, reads fail once it is closing
}

func (r *TimeoutReader) Read(p []byte) (int, error) {
	if r.Begun {
		r.Conn.SetReadDeadline(time.Now().Add(r.Timeout))
	} else {
		r.Conn.SetReadDeadline(time.Time{})
		// After the deadline is cleared: Close marks closing before it
		// sets the deadlines that wake the readers.
		if r.Server != nil && r.Server.Closing() {
			return 0, net.ErrClosed
		}
	}
	return r.Conn.Read(p)
}
