// Package gelf receives GELF (Graylog Extended Log Format) messages, as
// Docker's gelf log driver and graypy send them: UDP datagrams, chunked or
// not, gzip, zlib or uncompressed; and TCP streams framed by null bytes or
// newlines.
// Each message is mapped to an ECS document (see Map) and handed on in
// batches. Malformed and oversized packets are counted and logged at a
// limited rate, never a crash; memory held by incomplete chunked messages
// is bounded. docs/gelf.md describes the reassembly.
package gelf

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/internal/netlimit"
	"github.com/logweave/logweave/pipeline"
)

// Config is a GELF listener (`gelf:` on the collector).
type Config struct {
	Listen          string            `yaml:"listen"` // UDP and TCP on this address; empty: off
	MaxMessageBytes pipeline.ByteSize `yaml:"max_message_bytes"`
	MaxPendingBytes pipeline.ByteSize `yaml:"max_pending_bytes"`
	ChunkTimeout    time.Duration     `yaml:"chunk_timeout"`
	// ReceiveBuffer is the UDP socket's receive buffer: bursts beyond it
	// are dropped by the kernel (see logweave_gelf_udp_rcvbuf_errors_total).
	ReceiveBuffer pipeline.ByteSize `yaml:"receive_buffer"`
	// TCPMaxConnections are held at once; further ones are closed at once.
	TCPMaxConnections int `yaml:"tcp_max_connections"`
	// TCPReadTimeout: a message begun on TCP must end within it, or the
	// connection is closed. An idle connection between messages is kept
	// (Docker's driver keeps one per container, and loses the message it
	// writes into a connection the other end closed).
	TCPReadTimeout time.Duration `yaml:"tcp_read_timeout"`
}

// DefaultConfig returns the defaults (off).
func DefaultConfig() Config {
	return Config{MaxMessageBytes: 1 << 20, MaxPendingBytes: 64 << 20, ChunkTimeout: 5 * time.Second, ReceiveBuffer: 16 << 20,
		TCPMaxConnections: 512, TCPReadTimeout: 30 * time.Second}
}

// Validate checks the section.
func (c *Config) Validate(prefix string) error {
	if c.Listen == "" {
		return nil
	}
	if err := pipeline.ValidateListen(prefix+".listen", c.Listen); err != nil {
		return err
	}
	if c.MaxMessageBytes < 1024 || c.MaxPendingBytes < c.MaxMessageBytes || c.ChunkTimeout <= 0 {
		return fmt.Errorf("%s: need max_message_bytes >= 1KiB, max_pending_bytes >= max_message_bytes, chunk_timeout > 0", prefix)
	}
	if c.TCPMaxConnections < 1 || c.TCPReadTimeout <= 0 {
		return fmt.Errorf("%s: tcp_max_connections must be at least 1 and tcp_read_timeout positive", prefix)
	}
	return nil
}

var (
	received = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_gelf_messages_total", Help: "GELF messages decoded, by transport."}, []string{"transport"})
	rejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_gelf_rejected_total", Help: "GELF packets or messages rejected, by reason."}, []string{"reason"})
	pendingBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "logweave_gelf_pending_chunk_bytes", Help: "Bytes held by incomplete chunked GELF messages, bookkeeping included."})
	tcpPending = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "logweave_gelf_pending_tcp_bytes", Help: "Bytes held by GELF TCP messages not yet ended."})
	tcpRejected = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_gelf_tcp_connections_rejected_total", Help: "GELF TCP connections closed at once because tcp_max_connections were open."})
)

// rcvbufOnce registers logweave_gelf_udp_rcvbuf_errors_total with the
// first GELF listener: a process without one has no GELF datagrams to lose,
// and the kernel's counter is machine-wide.
var rcvbufOnce sync.Once

func registerRcvbufErrors() {
	rcvbufOnce.Do(func() {
		prometheus.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "logweave_gelf_udp_rcvbuf_errors_total",
			Help: "The kernel's UDP RcvbufErrors (all sockets of this network namespace): datagrams dropped on a full receive buffer."},
			receiveBufferErrors))
	})
}

const (
	maxChunks = 128
	chunkHdr  = 12
)

var (
	errTooLarge  = errors.New("message larger than max_message_bytes")
	errMalformed = errors.New("malformed")
)

// Handler receives decoded GELF payloads (JSON bytes, owned by the callee).
type Handler func(payload []byte, transport string)

// Server listens on UDP and TCP.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handle  Handler
	udp     *net.UDPConn
	tcp     net.Listener
	re      *Reassembler
	wg      sync.WaitGroup
	closing atomic.Bool
	drainBy atomic.Int64 // unix ns, set before closing: the last moment to read what UDP holds
	stop    chan struct{}
	limiter logLimiter
	tcpHeld atomic.Int64 // bytes of unended TCP messages, all connections
}

// On Close, datagrams the kernel already holds are read before the socket
// closes (they were sent and cannot be sent again): until it has been quiet
// for udpQuiet, for at most udpDrainMax.
const (
	udpQuiet    = 50 * time.Millisecond
	udpDrainMax = 2 * time.Second
)

// Listen binds UDP and TCP on cfg.Listen.
func Listen(cfg Config, handle Handler, log *slog.Logger) (*Server, error) {
	registerRcvbufErrors()
	if log == nil {
		log = slog.Default()
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("gelf udp: %w", err)
	}
	setReceiveBuffer(udp, int(cfg.ReceiveBuffer))
	// TCP on the same port as UDP got (it may have been 0).
	tcp, err := net.Listen("tcp", udp.LocalAddr().String())
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("gelf tcp: %w", err)
	}
	def := DefaultConfig()
	if cfg.TCPMaxConnections <= 0 {
		cfg.TCPMaxConnections = def.TCPMaxConnections
	}
	if cfg.TCPReadTimeout <= 0 {
		cfg.TCPReadTimeout = def.TCPReadTimeout
	}
	s := &Server{cfg: cfg, log: log, handle: handle, udp: udp, tcp: netlimit.Listen(tcp, cfg.TCPMaxConnections, tcpRejected.Inc), stop: make(chan struct{}),
		re: NewReassembler(int(cfg.MaxMessageBytes), int64(cfg.MaxPendingBytes), cfg.ChunkTimeout)}
	s.wg.Add(3)
	go s.serveUDP()
	go s.serveTCP()
	go s.expireChunks()
	return s, nil
}

// expireChunks drops incomplete chunked messages on time, also when no
// new chunk arrives.
func (s *Server) expireChunks() {
	defer s.wg.Done()
	t := time.NewTicker(max(s.cfg.ChunkTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.re.Expire(now)
		}
	}
}

// Addr is the bound address (UDP and TCP share the port).
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Close stops both listeners and waits for their goroutines; what UDP had
// received but not yet read is handled first.
func (s *Server) Close() error {
	s.drainBy.CompareAndSwap(0, time.Now().Add(udpDrainMax).UnixNano())
	if s.closing.Swap(true) {
		return nil
	}
	close(s.stop)
	s.udp.SetReadDeadline(time.Now().Add(udpQuiet))
	s.tcp.Close()
	s.wg.Wait()
	s.udp.Close()
	return nil
}

func (s *Server) reject(reason string, err error, from net.Addr) {
	rejected.WithLabelValues(reason).Inc()
	if s.limiter.allow() {
		s.log.Warn("gelf: message rejected", "reason", reason, "error", err, "from", from.String())
	}
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65536) // the largest datagram; never truncate a chunk
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if s.closing.Load() {
				return // quiet (or past drainBy) while closing
			}
			s.log.Warn("gelf udp read", "error", err)
			continue
		}
		if s.closing.Load() {
			s.udp.SetReadDeadline(time.Unix(0, min(time.Now().Add(udpQuiet).UnixNano(), s.drainBy.Load())))
		}
		pkt := buf[:n]
		if len(pkt) >= 2 && pkt[0] == 0x1e && pkt[1] == 0x0f {
			whole, err := s.re.Add(pkt, time.Now())
			if err != nil {
				s.reject("chunk", err, from)
				continue
			}
			if whole == nil {
				continue // waiting for more chunks
			}
			pkt = whole
		}
		msg, err := Decompress(pkt, int(s.cfg.MaxMessageBytes))
		if err != nil {
			reason := "malformed"
			if errors.Is(err, errTooLarge) {
				reason = "too_large"
			}
			s.reject(reason, err, from)
			continue
		}
		received.WithLabelValues("udp").Inc()
		s.handle(msg, "udp")
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if s.closing.Load() {
				return
			}
			s.log.Warn("gelf tcp accept", "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		conns.Add(1)
		done := make(chan struct{})
		go func() {
			defer conns.Done()
			s.serveConn(c)
			close(done)
		}()
		go func() { // unblock the reader on Close
			select {
			case <-done:
			case <-s.stop:
				c.Close()
			}
		}()
	}
}

// serveConn reads messages ended by a null byte or a newline (senders use
// either). A message longer than max_message_bytes is skipped to its end;
// one not ended within tcp_read_timeout closes the connection; the bytes
// of unended messages of all connections together stay within
// max_pending_bytes (past it, the connection that would grow them is
// closed).
func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	max := int(s.cfg.MaxMessageBytes)
	var held int64 // this connection's share of tcpHeld
	defer func() { tcpPending.Set(float64(s.tcpHeld.Add(-held))) }()
	setHeld := func(n int64) bool {
		total := s.tcpHeld.Add(n - held)
		held = n
		tcpPending.Set(float64(total))
		return total <= int64(s.cfg.MaxPendingBytes)
	}
	skipping := false
	sc := bufio.NewScanner(&deadlineReader{c: c, timeout: s.cfg.TCPReadTimeout, partial: func() bool { return held > 0 || skipping }})
	sc.Buffer(make([]byte, 0, 4096), max+1)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\x00\n"); i >= 0 {
			setHeld(0)
			if skipping {
				skipping = false
				return i + 1, nil, nil
			}
			return i + 1, data[:i], nil
		}
		if len(data) > max {
			s.reject("too_large", errTooLarge, c.RemoteAddr())
			setHeld(0)
			skipping = true
			return len(data), nil, nil
		}
		if atEOF {
			setHeld(0)
			if skipping || len(data) == 0 {
				return len(data), nil, nil
			}
			return len(data), data, nil
		}
		if !skipping && !setHeld(int64(len(data))) {
			return 0, nil, errTCPPending
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		m := bytes.TrimSpace(sc.Bytes())
		if len(m) == 0 {
			continue
		}
		msg, derr := Decompress(m, max)
		if derr != nil {
			s.reject("malformed", derr, c.RemoteAddr())
			continue
		}
		received.WithLabelValues("tcp").Inc()
		s.handle(msg, "tcp")
	}
	switch err := sc.Err(); {
	case errors.Is(err, errTCPPending):
		s.reject("pending_bound", err, c.RemoteAddr())
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.reject("tcp_read_timeout", err, c.RemoteAddr())
	}
}

var errTCPPending = errors.New("unended TCP messages passed max_pending_bytes; connection closed")

// deadlineReader gives each read of a message already begun
// tcp_read_timeout to arrive; between messages it waits without limit
// (until the server closes).
type deadlineReader struct {
	c       net.Conn
	timeout time.Duration
	partial func() bool
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if r.partial() {
		r.c.SetReadDeadline(time.Now().Add(r.timeout))
	} else {
		r.c.SetReadDeadline(time.Time{})
	}
	return r.c.Read(p)
}

// Decompress detects gzip (1f 8b), zlib (78 xx) or plain JSON ({) and
// returns the message, refusing to inflate beyond max bytes.
func Decompress(p []byte, max int) ([]byte, error) {
	var r io.Reader
	switch {
	case len(p) >= 2 && p[0] == 0x1f && p[1] == 0x8b:
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("%w gzip: %v", errMalformed, err)
		}
		r = zr
	case len(p) >= 2 && p[0] == 0x78 && (uint16(p[0])<<8|uint16(p[1]))%31 == 0:
		zr, err := zlib.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("%w zlib: %v", errMalformed, err)
		}
		r = zr
	default:
		t := bytes.TrimSpace(p)
		if len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("%w: not GELF (no JSON object, gzip or zlib)", errMalformed)
		}
		if len(t) > max {
			return nil, errTooLarge
		}
		return bytes.Clone(t), nil
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if len(out) > max {
		return nil, errTooLarge
	}
	return out, nil
}

// logLimiter allows one log line per second.
type logLimiter struct {
	mu   sync.Mutex
	last time.Time
}

func (l *logLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.last) < time.Second {
		return false
	}
	l.last = time.Now()
	return true
}
