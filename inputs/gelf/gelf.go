// Package gelf receives GELF (Graylog Extended Log Format) messages, as
// Docker's gelf log driver and graypy send them: UDP datagrams, chunked or
// not, gzip, zlib or uncompressed; and TCP streams framed by null bytes.
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

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
}

// DefaultConfig returns the defaults (off).
func DefaultConfig() Config {
	return Config{MaxMessageBytes: 1 << 20, MaxPendingBytes: 64 << 20, ChunkTimeout: 5 * time.Second, ReceiveBuffer: 16 << 20}
}

// Validate checks the section.
func (c *Config) Validate(prefix string) error {
	if c.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("%s.listen: %q is not host:port", prefix, c.Listen)
	}
	if c.MaxMessageBytes < 1024 || c.MaxPendingBytes < c.MaxMessageBytes || c.ChunkTimeout <= 0 {
		return fmt.Errorf("%s: need max_message_bytes >= 1KiB, max_pending_bytes >= max_message_bytes, chunk_timeout > 0", prefix)
	}
	return nil
}

var (
	received = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_gelf_messages_total", Help: "GELF messages decoded, by transport."}, []string{"transport"})
	rejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_gelf_rejected_total", Help: "GELF packets or messages rejected, by reason."}, []string{"reason"})
	pendingBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "logweave_gelf_pending_chunk_bytes", Help: "Bytes held by incomplete chunked GELF messages."})
	_ = promauto.NewCounterFunc(prometheus.CounterOpts{
		Name: "logweave_gelf_udp_rcvbuf_errors_total",
		Help: "The kernel's UDP RcvbufErrors (all sockets of this network namespace): datagrams dropped on a full receive buffer."},
		receiveBufferErrors)
)

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
	s := &Server{cfg: cfg, log: log, handle: handle, udp: udp, tcp: tcp, stop: make(chan struct{}),
		re: NewReassembler(int(cfg.MaxMessageBytes), int64(cfg.MaxPendingBytes), cfg.ChunkTimeout)}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
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

// serveConn reads null-byte-framed messages (a newline also ends one, as
// some senders use it).
func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	max := int(s.cfg.MaxMessageBytes)
	var frame []byte
	skipping := false
	for {
		part, err := r.ReadSlice(0)
		if errors.Is(err, bufio.ErrBufferFull) {
			if !skipping {
				frame = append(frame, part...)
				if len(frame) > max {
					s.reject("too_large", errTooLarge, c.RemoteAddr())
					frame, skipping = frame[:0], true
				}
			}
			continue
		}
		if err != nil && len(part) == 0 {
			return
		}
		if !skipping {
			frame = append(frame, bytes.TrimSuffix(part, []byte{0})...)
			for _, m := range bytes.Split(frame, []byte{'\n'}) {
				m = bytes.TrimSpace(m)
				if len(m) == 0 {
					continue
				}
				if len(m) > max {
					s.reject("too_large", errTooLarge, c.RemoteAddr())
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
		}
		frame, skipping = frame[:0], false
		if err != nil {
			return
		}
	}
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
