// Package syslog receives syslog over UDP and TCP on one port: RFC 5424
// and RFC 3164 messages (told apart per message), on TCP framed by octet
// counting (RFC 6587: "LEN SP MSG") or by newlines, told apart per
// message by its first byte. What network gear, nginx
// (access_log syslog:server=...), rsyslog forwarding and Docker's syslog
// log driver send.
//
// Limits: max_message_bytes (longer TCP messages close their connection,
// longer datagrams are cut by the socket and counted), max_connections on
// TCP, read_timeout for a TCP message begun (an idle connection between
// messages is kept). What cannot be framed is counted in
// logweave_input_malformed_total{input="syslog",reason} and logged at most
// once a second; a message without a syslog header is kept whole, tagged
// _syslogparsefailure.
package syslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logweave/logweave/internal/connserve"
	"github.com/logweave/logweave/internal/malformed"
	"github.com/logweave/logweave/pipeline"
)

// Config of the syslog input. The zero Listen is off.
type Config struct {
	// Listen is the address, UDP and TCP (the usual port 514 needs
	// privileges; 5514 does not).
	Listen string `yaml:"listen"`
	// MaxMessageBytes bounds one message (default 64KiB, as rsyslog's
	// maxMessageSize at most).
	MaxMessageBytes pipeline.ByteSize `yaml:"max_message_bytes"`
	// MaxConnections are served on TCP at once (default 1024).
	MaxConnections int `yaml:"max_connections"`
	// ReadTimeout: a TCP message begun must arrive whole within it
	// (default 30s).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// Timezone of RFC 3164 timestamps, which carry none (default UTC).
	Timezone string `yaml:"timezone"`
}

// DefaultConfig returns the defaults (off).
func DefaultConfig() Config {
	return Config{MaxMessageBytes: 64 << 10, MaxConnections: 1024, ReadTimeout: 30 * time.Second, Timezone: "UTC"}
}

// Validate checks the section (named prefix in errors).
func (c *Config) Validate(prefix string) error {
	if c.Listen == "" {
		return nil
	}
	if err := pipeline.ValidateListen(prefix+".listen", c.Listen); err != nil {
		return err
	}
	if c.MaxMessageBytes < 480 || c.MaxMessageBytes > 16<<20 {
		return fmt.Errorf("%s.max_message_bytes: between 480B (RFC 3164's minimum) and 16MiB", prefix)
	}
	if c.MaxConnections < 1 || c.ReadTimeout <= 0 {
		return fmt.Errorf("%s: max_connections must be at least 1 and read_timeout positive", prefix)
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return fmt.Errorf("%s.timezone: %w", prefix, err)
	}
	return nil
}

// Handler takes one message's bytes (valid until it returns) and when it
// came. It may block: the TCP sender is then held back, UDP datagrams wait
// in the socket's buffer.
type Handler func(msg []byte, at time.Time)

// Server is a listening syslog input.
type Server struct {
	cfg     Config
	udp     net.PacketConn
	tcp     *connserve.Server
	handle  Handler
	log     *slog.Logger
	closing atomic.Bool
	wg      sync.WaitGroup
}

// Listen starts serving cfg.Listen on UDP and TCP.
func Listen(cfg Config, handle Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, udp: udp, handle: handle, log: log}
	s.tcp = connserve.New(ln, cfg.MaxConnections, func() {
		malformed.Refuse(log, "syslog", "connections", fmt.Errorf("%d connections already served (syslog.max_connections)", cfg.MaxConnections), nil)
	}, nil, log)
	s.tcp.Serve(s.serveConn)
	s.wg.Add(1)
	go s.serveUDP()
	return s, nil
}

// Addr is the address served (UDP and TCP).
func (s *Server) Addr() string { return s.tcp.Addr().String() }

// Close stops receiving; messages being handled finish, and the datagrams
// the kernel holds are read first (until the socket is quiet for 50 ms).
func (s *Server) Close() error {
	s.closing.Store(true)
	s.udp.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	err := s.tcp.Close()
	s.wg.Wait()
	s.udp.Close()
	return err
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if s.closing.Load() {
				return
			}
			s.log.Warn("syslog udp read", "error", err)
			continue
		}
		if s.closing.Load() {
			s.udp.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		}
		msg := buf[:n]
		if n > int(s.cfg.MaxMessageBytes) {
			malformed.Refuse(s.log, "syslog", "too_large", fmt.Errorf("%d-byte datagram cut to max_message_bytes", n), from)
			msg = msg[:s.cfg.MaxMessageBytes]
		}
		s.handle(msg, time.Now())
	}
}

var errTooLarge = errors.New("message larger than max_message_bytes")

// serveConn reads a connection's messages; what breaks the framing is
// counted and ends the connection.
func (s *Server) serveConn(c net.Conn) {
	if err := s.readConn(c); err != nil && !s.tcp.Closing() {
		malformed.Refuse(s.log, "syslog", malformed.Reason(err, errTooLarge), err, c.RemoteAddr())
	}
}

// readConn reads messages framed by octet counting or by newlines, told
// apart by each message's first byte (a digit: a length). It returns nil
// when the sender closed between messages.
func (s *Server) readConn(c net.Conn) error {
	tr := &connserve.TimeoutReader{Conn: c, Timeout: s.cfg.ReadTimeout, Server: s.tcp}
	br := bufio.NewReaderSize(tr, 64<<10)
	max := int(s.cfg.MaxMessageBytes)
	var line []byte
	for {
		tr.Begun = false
		first, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) || s.tcp.Closing() {
				return nil
			}
			return err
		}
		tr.Begun = true
		if first[0] >= '1' && first[0] <= '9' {
			// Octet counting: at most 8 digits, a space, the message.
			digits, err := br.ReadSlice(' ')
			if err != nil || len(digits) > 9 {
				return fmt.Errorf("octet count: %q: %w", digits, errors.Join(err, errMalformedFrame))
			}
			n, err := strconv.Atoi(string(digits[:len(digits)-1]))
			if err != nil {
				return fmt.Errorf("octet count %q: %w", digits, errMalformedFrame)
			}
			if n > max {
				return fmt.Errorf("%d bytes: %w", n, errTooLarge)
			}
			line = append(line[:0], make([]byte, n)...)
			if _, err := io.ReadFull(br, line); err != nil {
				return unexpected(err)
			}
		} else {
			line = line[:0]
			for {
				frag, err := br.ReadSlice('\n')
				if len(line)+len(frag) > max+1 {
					return fmt.Errorf("no newline within max_message_bytes: %w", errTooLarge)
				}
				line = append(line, frag...)
				if err == nil {
					break
				}
				if errors.Is(err, bufio.ErrBufferFull) {
					continue
				}
				if errors.Is(err, io.EOF) && len(line) > 0 {
					break // the last message, unended: kept
				}
				return unexpected(err)
			}
		}
		s.handle(line, time.Now())
	}
}

var errMalformedFrame = errors.New("not a syslog frame")

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
