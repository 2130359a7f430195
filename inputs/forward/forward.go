// Package forward receives the Fluent Forward protocol (v1) over TCP: what
// Fluent Bit's and Fluentd's forward outputs and Docker's fluentd log
// driver send to a Fluentd aggregator, so they can point at logweave
// instead.
//
// All four event modes are read: Message ([tag, time, record, option]),
// Forward ([tag, [[time, record], ...], option]), PackedForward ([tag,
// bin of concatenated [time, record] entries, option]) and
// CompressedPackedForward (the same, gzip, option compressed: "gzip").
// Times are integer seconds, floats or the EventTime extension (type 0).
// When the option asks for an acknowledgement (chunk), the answer {"ack":
// chunk} is written only once the handler returned, that is once the
// entries are durable; a message the handler refused gets no answer and
// the connection is closed, so the sender sends the chunk again.
//
// Limits: max_message_bytes bounds one message as sent and
// max_decompressed_bytes what a compressed one inflates to; a message must
// arrive whole within read_timeout once begun (idle connections between
// messages are kept, as Fluentd keeps them); max_connections are served at
// once and further ones closed. A message that breaks the framing (not
// MessagePack, not a Forward message, too large) is counted in
// logweave_input_malformed_total{input="forward",reason}, logged at most
// once a second, and its connection closed: after it nothing can be told
// apart.
//
// With tls, connections are TLS (mutual with client_ca). With
// security.shared_key, a connection first passes the shared-key handshake
// (HELO, PING, PONG); one that fails it is counted (reason auth) and
// closed. UDP datagrams to the same port number are answered as Fluentd
// answers heartbeats (one zero byte).
package forward

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/connserve"
	"github.com/logweave/logweave/internal/malformed"
	"github.com/logweave/logweave/pipeline"
)

// Config of the forward input. The zero Listen is off.
type Config struct {
	// Listen is the TCP address (Fluentd's port is 24224).
	Listen string `yaml:"listen"`
	// MaxMessageBytes bounds one message as sent (default 16MiB;
	// Fluent Bit's chunks are ~2 MiB, Fluentd's up to 8 MiB).
	MaxMessageBytes pipeline.ByteSize `yaml:"max_message_bytes"`
	// MaxDecompressedBytes bounds what a CompressedPackedForward message
	// inflates to (default 64MiB).
	MaxDecompressedBytes pipeline.ByteSize `yaml:"max_decompressed_bytes"`
	// MaxConnections are served at once (default 1024).
	MaxConnections int `yaml:"max_connections"`
	// ReadTimeout: a message begun must arrive whole within it (default
	// 30s).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// TLS: with cert and key, connections are TLS (Fluent Bit's tls on,
	// Fluentd's transport tls); with client_ca, senders need a
	// certificate it signed.
	TLS pipeline.ServerTLS `yaml:"tls"`
	// Security: with shared_key, the handshake of Forward protocol v1.
	Security Security `yaml:"security"`
}

// DefaultConfig returns the defaults (off).
func DefaultConfig() Config {
	return Config{MaxMessageBytes: 16 << 20, MaxDecompressedBytes: 64 << 20, MaxConnections: 1024, ReadTimeout: 30 * time.Second}
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
	if c.Security.SelfHostname != "" && c.Security.SharedKey == "" {
		return fmt.Errorf("%s.security.self_hostname: set without shared_key, which turns the handshake on", prefix)
	}
	if c.MaxMessageBytes < 1024 || c.MaxDecompressedBytes < c.MaxMessageBytes {
		return fmt.Errorf("%s: need max_message_bytes >= 1KiB and max_decompressed_bytes >= max_message_bytes", prefix)
	}
	if c.MaxConnections < 1 || c.ReadTimeout <= 0 {
		return fmt.Errorf("%s: max_connections must be at least 1 and read_timeout positive", prefix)
	}
	return nil
}

// Entry is one event of a message: its time and its record, as a JSON
// object.
type Entry struct {
	Time   time.Time
	Record []byte
}

// Message is what one Forward message carried.
type Message struct {
	Tag     string
	Entries []Entry
	// Chunk is the option's chunk id ("" when no acknowledgement is asked).
	Chunk string
}

// Handler takes the entries of one message and returns once they are
// durable (nil), or an error: then no acknowledgement is sent and the
// connection is closed. ctx ends when the server closes.
type Handler func(ctx context.Context, m *Message) error

// Server is a listening forward input.
type Server struct {
	cfg    Config
	conns  *connserve.Server
	handle Handler
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	join   *joiner
	stop   chan struct{}
	done   chan struct{}

	udp       net.PacketConn // heartbeats
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// closeGrace is how long Close lets messages in progress reach the sink.
const closeGrace = 5 * time.Second

// Listen starts serving cfg.Listen.
func Listen(cfg Config, handle Handler, log *slog.Logger) (*Server, error) {
	tc, err := cfg.TLS.Config("forward.tls")
	if err != nil {
		return nil, err
	}
	if cfg.Security.SharedKey != "" && cfg.Security.SelfHostname == "" {
		cfg.Security.SelfHostname, _ = os.Hostname()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("forward heartbeat (udp): %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, handle: handle, log: log, ctx: ctx, cancel: cancel, join: newJoiner(int(cfg.MaxMessageBytes)),
		stop: make(chan struct{}), done: make(chan struct{}), udp: udp}
	s.wg.Add(1)
	go s.heartbeat(udp)
	s.conns = connserve.New(ln, cfg.MaxConnections, func() {
		malformed.Refuse(log, "forward", "connections", fmt.Errorf("%d connections already served (forward.max_connections)", cfg.MaxConnections), nil)
	}, tc, log)
	s.conns.Serve(s.serveConn)
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case now := <-tick.C:
				s.storeLines(s.join.expire(now, false))
			case <-s.stop:
				return
			}
		}
	}()
	return s, nil
}

// storeLines stores lines given up on (or pushed out of memory), as they
// are.
func (s *Server) storeLines(lines []Line) {
	for _, l := range lines {
		if err := s.handle(s.ctx, &Message{Tag: l.Tag, Entries: []Entry{l.Entry}}); err != nil {
			s.log.Warn("forward: a line whose parts stopped coming was not stored", "tag", l.Tag, "error", err)
		}
	}
}

// Addr is the address served.
func (s *Server) Addr() string { return s.conns.Addr().String() }

// Close stops accepting, lets the messages being handled (and the open
// parts of lines) reach the sink within a grace period, and closes the
// connections.
// Calling it again returns what the first call did.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		grace := time.AfterFunc(closeGrace, s.cancel) // then the handlers' context ends
		defer grace.Stop()
		defer s.cancel()
		s.closeErr = s.conns.Close()
		s.udp.Close()
		s.wg.Wait()
		close(s.stop)
		<-s.done
		s.storeLines(s.join.expire(time.Now(), true))
	})
	return s.closeErr
}

func (s *Server) serveConn(c net.Conn) {
	tr := &connserve.TimeoutReader{Conn: c, Timeout: s.cfg.ReadTimeout, Server: s.conns}
	br := bufio.NewReaderSize(tr, 64<<10)
	if s.cfg.Security.SharedKey != "" {
		tr.Begun = true // the handshake must end within read_timeout
		if err := s.handshake(c, br); err != nil {
			reason := malformed.Reason(err)
			if errors.Is(err, errAuth) {
				reason = "auth"
			}
			malformed.Refuse(s.log, "forward", reason, err, c.RemoteAddr())
			return
		}
	}
	for {
		tr.Begun = false
		if _, err := br.Peek(1); err != nil {
			if !s.conns.Closing() && !errors.Is(err, io.EOF) {
				s.log.Debug("forward: connection ended", "error", err)
			}
			return
		}
		tr.Begun = true
		m, err := s.read(br)
		if err != nil {
			malformed.Refuse(s.log, "forward", malformed.Reason(err, errTooLarge, errInflated), err, c.RemoteAddr())
			return
		}
		var evicted []Line
		m.Entries, evicted = s.join.add(m.Tag, m.Entries, time.Now())
		s.storeLines(evicted)
		if len(m.Entries) > 0 {
			if err := s.handle(s.ctx, m); err != nil {
				s.log.Warn("forward: entries not stored; closing the connection, the sender sends them again", "tag", m.Tag, "entries", len(m.Entries), "error", err)
				return
			}
		}
		if m.Chunk == "" {
			continue
		}
		// Parts of a line still open are acknowledged too: a sender asking
		// for acks (Docker's fluentd-request-ack) sends the next part only
		// after the ack of this one. Until the line is whole they are in
		// memory only (as in Fluentd's concat filter): a line whose parts
		// stop coming for partialTimeout, or a collector that stops, stores
		// them as they are; a collector killed in between loses them.
		c.SetWriteDeadline(time.Now().Add(s.cfg.ReadTimeout))
		if _, err := c.Write(ack(m.Chunk)); err != nil {
			s.log.Debug("forward: ack not sent", "error", err)
			return
		}
	}
}

// ack is the answer {"ack": chunk}.
func ack(chunk string) []byte {
	return appendStr([]byte{0x81, 0xa3, 'a', 'c', 'k'}, chunk)
}

var errInflated = errors.New("decompressed message larger than max_decompressed_bytes")

// read reads one message.
func (s *Server) read(br *bufio.Reader) (*Message, error) {
	d := &decoder{r: br, left: int64(s.cfg.MaxMessageBytes)}
	kind, n, _, err := d.head()
	if err != nil {
		return nil, err
	}
	if kind != kindArray || n < 2 || n > 4 {
		return nil, fmt.Errorf("%w: a Forward message is an array of 2 to 4 values", errMalformed)
	}
	m := &Message{}
	if m.Tag, err = d.string(); err != nil {
		return nil, err
	}
	c, err := d.peek()
	if err != nil {
		return nil, unexpected(err)
	}
	rest := n - 2 // values after the second: the option, or time's record
	switch {
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd: // Forward
		kind, k, _, err := d.head()
		if err != nil || kind != kindArray {
			return nil, errMalformed
		}
		for i := int64(0); i < k; i++ {
			e, err := entry(d)
			if err != nil {
				return nil, err
			}
			m.Entries = append(m.Entries, e)
		}
	case c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb || c == 0xc4 || c == 0xc5 || c == 0xc6: // PackedForward
		_, k, _, err := d.head()
		if err != nil {
			return nil, err
		}
		packed, err := d.bytes(nil, k)
		if err != nil {
			return nil, err
		}
		opt, err := option(d, rest)
		if err != nil {
			return nil, err
		}
		m.Chunk = opt.Get("chunk").String()
		if opt.Get("compressed").String() == "gzip" {
			if packed, err = gunzip(packed, int64(s.cfg.MaxDecompressedBytes)); err != nil {
				return nil, err
			}
		}
		pd := &decoder{r: bufio.NewReader(bytes.NewReader(packed)), left: int64(len(packed))}
		for pd.left > 0 {
			e, err := entry(pd)
			if err != nil {
				return nil, err
			}
			m.Entries = append(m.Entries, e)
		}
		return m, nil
	default: // Message: time, record
		if n < 3 {
			return nil, fmt.Errorf("%w: a Message has a time and a record", errMalformed)
		}
		t, err := d.time()
		if err != nil {
			return nil, err
		}
		rec, err := record(d)
		if err != nil {
			return nil, err
		}
		m.Entries = append(m.Entries, Entry{Time: t, Record: rec})
		rest--
	}
	opt, err := option(d, rest)
	if err != nil {
		return nil, err
	}
	m.Chunk = opt.Get("chunk").String()
	return m, nil
}

// entry reads [time, record].
func entry(d *decoder) (Entry, error) {
	kind, n, _, err := d.head()
	if err != nil {
		return Entry{}, err
	}
	if kind != kindArray || n != 2 {
		return Entry{}, fmt.Errorf("%w: an entry is [time, record]", errMalformed)
	}
	t, err := d.time()
	if err != nil {
		return Entry{}, err
	}
	rec, err := record(d)
	return Entry{Time: t, Record: rec}, err
}

// record reads a map as a JSON object.
func record(d *decoder) ([]byte, error) {
	c, err := d.peek()
	if err != nil {
		return nil, unexpected(err)
	}
	if c&0xf0 == 0x80 || c == 0xde || c == 0xdf {
		return d.json(nil)
	}
	// Not a map, but its end is known: kept as its text, tagged.
	v, err := d.json(nil)
	if err != nil {
		return nil, err
	}
	malformed.Count("forward", "record_not_a_map")
	var e pipeline.Event
	if r := gjson.ParseBytes(v); r.Type == gjson.String {
		e.SetString("message", r.Str)
	} else {
		e.SetString("message", string(v))
	}
	e.Set("tags", []byte(`["`+TagParseFailure+`"]`))
	return e.Encode(nil), nil
}

// TagParseFailure tags a record that was not a map (kept as its text).
const TagParseFailure = "_forwardparsefailure"

// option reads the option map when there is one (n: 0 or 1 values left).
func option(d *decoder, n int64) (gjson.Result, error) {
	if n <= 0 {
		return gjson.Result{}, nil
	}
	c, err := d.peek()
	if err != nil {
		return gjson.Result{}, unexpected(err)
	}
	if c == 0xc0 { // nil
		return gjson.Result{}, d.skip()
	}
	if c&0xf0 != 0x80 && c != 0xde && c != 0xdf {
		return gjson.Result{}, fmt.Errorf("%w: the option is a map", errMalformed)
	}
	raw, err := d.json(nil)
	if err != nil {
		return gjson.Result{}, err
	}
	return gjson.ParseBytes(raw), nil
}

// gunzip inflates (possibly several concatenated gzip members: Fluent
// Bit compresses chunk by chunk) up to max bytes.
func gunzip(b []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: compressed: %v", errMalformed, err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: compressed: %v", errMalformed, err)
	}
	if int64(len(out)) > max {
		return nil, errInflated
	}
	return out, nil
}
