// Package beats receives the Lumberjack v2 protocol: what Filebeat,
// Winlogbeat and the other Beats send to Logstash's beats input (their
// `output.logstash`), so they can point at logweave instead.
//
// A sender announces a window ('2' 'W', the number of events), sends them
// as JSON data frames ('2' 'J': sequence number, length, JSON; or v1's key
// and value pairs, '2' 'D'), usually inside a zlib-compressed frame ('2'
// 'C'), and waits for the acknowledgement of the last sequence number ('2'
// 'A'). That answer is written only once the handler returned, that is once
// the window's events are durable; a window the handler refused gets no
// answer and the connection is closed, so the sender sends it again.
//
// Limits: max_frame_bytes bounds one frame as sent (a compressed frame
// included) and max_decompressed_bytes what a compressed frame inflates
// to; max_window the events announced at once; a frame begun must arrive
// within read_timeout (idle connections between windows are kept);
// max_connections are served at once. What breaks the framing is counted in
// logweave_input_malformed_total{input="beats",reason}, logged at most once
// a second, and closes its connection. With tls, connections are TLS
// (Beats' ssl.* settings; mutual with client_ca).
package beats

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/connserve"
	"github.com/logweave/logweave/internal/malformed"
	"github.com/logweave/logweave/pipeline"
)

// Config of the beats input. The zero Listen is off.
type Config struct {
	// Listen is the TCP address (Logstash's beats port is 5044).
	Listen string `yaml:"listen"`
	// MaxFrameBytes bounds one frame as sent (default 16MiB).
	MaxFrameBytes pipeline.ByteSize `yaml:"max_frame_bytes"`
	// MaxDecompressedBytes bounds what a compressed frame inflates to
	// (default 64MiB).
	MaxDecompressedBytes pipeline.ByteSize `yaml:"max_decompressed_bytes"`
	// MaxWindow bounds the events a sender announces at once (default
	// 16384; Filebeat's bulk_max_size is 2048).
	MaxWindow int `yaml:"max_window"`
	// MaxConnections are served at once (default 1024).
	MaxConnections int `yaml:"max_connections"`
	// ReadTimeout: a frame begun must arrive whole within it (default 30s).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// TLS: with cert and key, connections are TLS (Beats' ssl.*); with
	// client_ca, Beats need a certificate it signed
	// (ssl.certificate/ssl.key).
	TLS pipeline.ServerTLS `yaml:"tls"`
}

// DefaultConfig returns the defaults (off).
func DefaultConfig() Config {
	return Config{MaxFrameBytes: 16 << 20, MaxDecompressedBytes: 64 << 20, MaxWindow: 16384, MaxConnections: 1024, ReadTimeout: 30 * time.Second}
}

// Validate checks the section (named prefix in errors).
func (c *Config) Validate(prefix string) error {
	if c.Listen == "" {
		return nil
	}
	if err := pipeline.ValidateListen(prefix+".listen", c.Listen); err != nil {
		return err
	}
	if err := c.TLS.Validate(prefix + ".tls"); err != nil {
		return err
	}
	if c.MaxFrameBytes < 1024 || c.MaxDecompressedBytes < c.MaxFrameBytes {
		return fmt.Errorf("%s: need max_frame_bytes >= 1KiB and max_decompressed_bytes >= max_frame_bytes", prefix)
	}
	if c.MaxWindow < 1 || c.MaxConnections < 1 || c.ReadTimeout <= 0 {
		return fmt.Errorf("%s: max_window and max_connections must be at least 1 and read_timeout positive", prefix)
	}
	return nil
}

// Handler takes a window's events (JSON objects, valid until it returns)
// and returns once they are durable (nil), or an error: then no
// acknowledgement is sent and the connection is closed. ctx ends when the
// server closes.
type Handler func(ctx context.Context, events [][]byte) error

// Server is a listening beats input.
type Server struct {
	cfg    Config
	conns  *connserve.Server
	handle Handler
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
}

// closeGrace is how long Close lets windows in progress reach the sink.
const closeGrace = 5 * time.Second

// Listen starts serving cfg.Listen.
func Listen(cfg Config, handle Handler, log *slog.Logger) (*Server, error) {
	tc, err := cfg.TLS.Config("beats.tls")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, handle: handle, log: log, ctx: ctx, cancel: cancel}
	s.conns = connserve.New(ln, cfg.MaxConnections, func() {
		malformed.Refuse(log, "beats", "connections", fmt.Errorf("%d connections already served (beats.max_connections)", cfg.MaxConnections), nil)
	}, tc, log)
	s.conns.Serve(s.serveConn)
	return s, nil
}

// Addr is the address served.
func (s *Server) Addr() string { return s.conns.Addr().String() }

// Close stops accepting, lets windows being stored finish within a grace
// period, and closes the connections.
func (s *Server) Close() error {
	grace := time.AfterFunc(closeGrace, s.cancel)
	defer grace.Stop()
	defer s.cancel()
	return s.conns.Close()
}

var (
	errTooLarge  = errors.New("frame larger than max_frame_bytes")
	errInflated  = errors.New("compressed frame inflates past max_decompressed_bytes")
	errMalformed = errors.New("not Lumberjack v2")
)

// TagParseFailure tags an event that was not a JSON object (kept as its
// text).
const TagParseFailure = "_beatsparsefailure"

// window is the events of the window being received.
type window struct {
	size    uint32 // announced
	lastSeq uint32
	events  [][]byte
	bytes   int64 // of events, bounded by max_decompressed_bytes
}

func (s *Server) serveConn(c net.Conn) {
	tr := &connserve.TimeoutReader{Conn: c, Timeout: s.cfg.ReadTimeout, Server: s.conns}
	br := bufio.NewReaderSize(tr, 64<<10)
	w := &window{}
	for {
		tr.Begun = false
		if _, err := br.Peek(1); err != nil {
			return
		}
		tr.Begun = true
		if err := s.frame(br, w, false); err != nil {
			malformed.Refuse(s.log, "beats", malformed.Reason(err, errTooLarge, errInflated), err, c.RemoteAddr())
			return
		}
		if w.size == 0 || uint32(len(w.events)) < w.size {
			continue
		}
		if err := s.handle(s.ctx, w.events); err != nil {
			s.log.Warn("beats: window not stored; closing the connection, the sender sends it again", "events", len(w.events), "error", err)
			return
		}
		var ack [6]byte
		ack[0], ack[1] = '2', 'A'
		binary.BigEndian.PutUint32(ack[2:], w.lastSeq)
		c.SetWriteDeadline(time.Now().Add(s.cfg.ReadTimeout))
		if _, err := c.Write(ack[:]); err != nil {
			return
		}
		*w = window{events: w.events[:0]}
	}
}

// frame reads one frame into w (inside a compressed frame: no further
// compressed frame).
func (s *Server) frame(r *bufio.Reader, w *window, inner bool) error {
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return unexpected(err)
	}
	if head[0] != '2' {
		return fmt.Errorf("%w: version %q", errMalformed, head[0])
	}
	u32 := func() (uint32, error) {
		var b [4]byte
		_, err := io.ReadFull(r, b[:])
		return binary.BigEndian.Uint32(b[:]), unexpected(err)
	}
	// bytesOf reads n bytes, n checked before anything is allocated.
	bytesOf := func(n uint32) ([]byte, error) {
		if int64(n) > int64(s.cfg.MaxFrameBytes) {
			return nil, fmt.Errorf("%w: %d bytes", errTooLarge, n)
		}
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, unexpected(err)
	}
	switch head[1] {
	case 'W':
		n, err := u32()
		if err != nil {
			return err
		}
		if n == 0 || int64(n) > int64(s.cfg.MaxWindow) {
			return fmt.Errorf("%w: window of %d events (beats.max_window %d)", errTooLarge, n, s.cfg.MaxWindow)
		}
		if len(w.events) > 0 {
			return fmt.Errorf("%w: a new window before the last one ended", errMalformed)
		}
		w.size = n
		return nil
	case 'C':
		if inner {
			return fmt.Errorf("%w: a compressed frame inside a compressed frame", errMalformed)
		}
		n, err := u32()
		if err != nil {
			return err
		}
		payload, err := bytesOf(n)
		if err != nil {
			return err
		}
		zr, err := zlib.NewReader(bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("%w: compressed frame: %v", errMalformed, err)
		}
		inflated, err := io.ReadAll(io.LimitReader(zr, int64(s.cfg.MaxDecompressedBytes)+1))
		if err != nil {
			return fmt.Errorf("%w: compressed frame: %v", errMalformed, err)
		}
		if int64(len(inflated)) > int64(s.cfg.MaxDecompressedBytes) {
			return errInflated
		}
		ir := bufio.NewReader(bytes.NewReader(inflated))
		for {
			if _, err := ir.Peek(1); err == io.EOF {
				return nil
			}
			if err := s.frame(ir, w, true); err != nil {
				return err
			}
		}
	case 'J':
		seq, err := u32()
		if err != nil {
			return err
		}
		n, err := u32()
		if err != nil {
			return err
		}
		doc, err := bytesOf(n)
		if err != nil {
			return err
		}
		if !gjson.ValidBytes(doc) || !gjson.ParseBytes(doc).IsObject() {
			// Its end is known: kept as its text, tagged.
			malformed.Count("beats", "event_not_json")
			var e pipeline.Event
			e.SetString("message", strings.ToValidUTF8(string(doc), "\uFFFD"))
			e.Set("tags", []byte(`["`+TagParseFailure+`"]`))
			doc = e.Encode(nil)
		}
		return w.add(seq, doc, s.cfg)
	case 'D': // v1 data: key and value pairs
		seq, err := u32()
		if err != nil {
			return err
		}
		pairs, err := u32()
		if err != nil {
			return err
		}
		if int64(pairs)*8 > int64(s.cfg.MaxFrameBytes) {
			return fmt.Errorf("%w: %d pairs", errTooLarge, pairs)
		}
		doc := []byte{'{'}
		for i := uint32(0); i < pairs; i++ {
			for j := 0; j < 2; j++ {
				n, err := u32()
				if err != nil {
					return err
				}
				b, err := bytesOf(n)
				if err != nil {
					return err
				}
				if i > 0 && j == 0 {
					doc = append(doc, ',')
				}
				doc = pipeline.AppendJSONString(doc, string(b))
				if j == 0 {
					doc = append(doc, ':')
				}
			}
			if len(doc) > int(s.cfg.MaxFrameBytes) {
				return errTooLarge
			}
		}
		return w.add(seq, append(doc, '}'), s.cfg)
	}
	return fmt.Errorf("%w: frame type %q", errMalformed, head[1])
}

func (w *window) add(seq uint32, doc []byte, cfg Config) error {
	if w.size == 0 {
		w.size = 1 // no window announced: acknowledge each event
	}
	if uint32(len(w.events)) >= w.size {
		return fmt.Errorf("%w: more events than the window announced", errMalformed)
	}
	if w.bytes += int64(len(doc)); w.bytes > int64(cfg.MaxDecompressedBytes) {
		return fmt.Errorf("%w: a window of more than max_decompressed_bytes", errTooLarge)
	}
	w.events = append(w.events, doc)
	w.lastSeq = seq
	return nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
