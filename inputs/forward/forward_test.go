package forward

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/vmihailenco/msgpack/v5"
)

// mp is MessagePack of v, from a MessagePack library (not our decoder).
func mp(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// eventTime is Fluentd's EventTime extension (type 0).
func eventTime(ts time.Time) []byte {
	b := []byte{0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], uint32(ts.Unix()))
	binary.BigEndian.PutUint32(b[6:], uint32(ts.Nanosecond()))
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type received struct {
	mu   sync.Mutex
	msgs []*Message
}

func (r *received) all() []*Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Message(nil), r.msgs...)
}

func listen(t *testing.T, cfg Config, h Handler) *Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := Listen(cfg, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func collect(t *testing.T, cfg Config) (*Server, *received) {
	r := &received{}
	s := listen(t, cfg, func(_ context.Context, m *Message) error {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
		return nil
	})
	return s, r
}

// client is a sender's connection, with one reader for the answers.
type client struct {
	net.Conn
	dec *msgpack.Decoder
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c, msgpack.NewDecoder(bufio.NewReader(c))}
}

// readAck reads {"ack": chunk} with a library decoder.
func readAck(t *testing.T, c *client, within time.Duration) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	var m map[string]string
	if err := c.dec.Decode(&m); err != nil {
		return "", err
	}
	return m["ack"], nil
}

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)

// Each of the protocol's four modes, each asking for an ack: the entries
// arrive with their times (EventTime to the nanosecond, integer seconds,
// float) and records as JSON, and each chunk is acknowledged.
func TestEveryModeIsReadAndAcknowledged(t *testing.T) {
	rec := map[string]any{"log": `{"level":"info","msg":"hi"}`, "container_id": "abc", "n": 42, "ok": true, "f": 1.5, "nested": map[string]any{"a": []any{1, "x", nil}}}
	recJSON := `{"container_id":"abc","f":1.5,"log":"{\"level\":\"info\",\"msg\":\"hi\"}","n":42,"nested":{"a":[1,"x",null]},"ok":true}`
	opt := func(chunk string, extra ...any) []byte {
		m := map[string]any{"chunk": chunk}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return mp(t, m)
	}
	entry := func(tm []byte) []byte { return cat([]byte{0x92}, tm, mp(t, rec)) }
	packed := cat(entry(eventTime(t0)), entry(mp(t, t0.Unix())))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(packed[:7])
	zw.Close()
	zw = gzip.NewWriter(&gz) // a second gzip member, as Fluent Bit appends them
	zw.Write(packed[7:])
	zw.Close()

	cases := []struct {
		name   string
		msg    []byte
		times  []time.Time
		chunk  string
		noneOK bool
	}{
		{"message, EventTime", cat([]byte{0x94}, mp(t, "app.orders"), eventTime(t0), mp(t, rec), opt("c1")), []time.Time{t0}, "c1", false},
		{"message, seconds", cat([]byte{0x94}, mp(t, "app.orders"), mp(t, t0.Unix()), mp(t, rec), opt("c2")), []time.Time{t0.Truncate(time.Second)}, "c2", false},
		{"message, float", cat([]byte{0x94}, mp(t, "app.orders"), mp(t, 1765015200.5), mp(t, rec), opt("c3")), []time.Time{time.Unix(1765015200, 5e8).UTC()}, "c3", false},
		{"forward", cat([]byte{0x93}, mp(t, "app.orders"), []byte{0x92}, entry(eventTime(t0)), entry(mp(t, t0.Unix())), opt("c4")), []time.Time{t0, t0.Truncate(time.Second)}, "c4", false},
		{"packed forward (bin)", cat([]byte{0x93}, mp(t, "app.orders"), mp(t, packed), opt("c5")), []time.Time{t0, t0.Truncate(time.Second)}, "c5", false},
		{"packed forward (str, as Fluent Bit)", cat([]byte{0x93}, mp(t, "app.orders"), mp(t, string(packed)), opt("c6", "size", 2)), []time.Time{t0, t0.Truncate(time.Second)}, "c6", false},
		{"compressed packed forward", cat([]byte{0x93}, mp(t, "app.orders"), mp(t, gz.Bytes()), opt("c7", "compressed", "gzip")), []time.Time{t0, t0.Truncate(time.Second)}, "c7", false},
		{"message without option", cat([]byte{0x93}, mp(t, "app.orders"), eventTime(t0), mp(t, rec)), []time.Time{t0}, "", true},
	}
	s, r := collect(t, DefaultConfig())
	c := dial(t, s.Addr())
	for i, tc := range cases {
		if _, err := c.Write(tc.msg); err != nil {
			t.Fatal(err)
		}
		if tc.chunk != "" {
			got, err := readAck(t, c, 5*time.Second)
			if err != nil || got != tc.chunk {
				t.Fatalf("%s: ack %q, %v; want %q", tc.name, got, err, tc.chunk)
			}
		} else {
			time.Sleep(100 * time.Millisecond)
		}
		msgs := r.all()
		if len(msgs) != i+1 {
			t.Fatalf("%s: %d messages handled, want %d", tc.name, len(msgs), i+1)
		}
		m := msgs[i]
		if m.Tag != "app.orders" || m.Chunk != tc.chunk || len(m.Entries) != len(tc.times) {
			t.Fatalf("%s: tag %q chunk %q, %d entries", tc.name, m.Tag, m.Chunk, len(m.Entries))
		}
		for k, e := range m.Entries {
			if !e.Time.Equal(tc.times[k]) || string(e.Record) != recJSON {
				t.Fatalf("%s: entry %d: %v %s; want %v %s", tc.name, k, e.Time, e.Record, tc.times[k], recJSON)
			}
		}
	}
}

// The ack waits for the handler (the entries are durable), and a message
// the handler refused is not acknowledged: its connection is closed, so
// the sender sends the chunk again.
func TestAckOnlyOnceDurable(t *testing.T) {
	release := make(chan error)
	s := listen(t, DefaultConfig(), func(ctx context.Context, m *Message) error { return <-release })
	msg := cat([]byte{0x94}, mp(t, "t"), eventTime(t0), mp(t, map[string]any{"log": "x"}), mp(t, map[string]any{"chunk": "k1"}))
	c := dial(t, s.Addr())
	c.Write(msg)
	if _, err := readAck(t, c, 300*time.Millisecond); err == nil {
		t.Fatal("acknowledged before the handler returned")
	}
	release <- nil
	if got, err := readAck(t, c, 5*time.Second); err != nil || got != "k1" {
		t.Fatalf("ack %q, %v", got, err)
	}
	c2 := dial(t, s.Addr())
	c2.Write(msg)
	release <- errors.New("buffer full")
	if got, err := readAck(t, c2, 5*time.Second); err == nil {
		t.Fatalf("a refused message was acknowledged (%q)", got)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection of a refused message stayed open")
	}
}

// Input that breaks the framing closes its connection, quickly and
// without allocating what it declares; the server goes on serving.
func TestMalformedAndOversizedInputClosesItsConnection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMessageBytes = 64 << 10
	cfg.MaxDecompressedBytes = 64 << 10
	cfg.ReadTimeout = 300 * time.Millisecond
	s, r := collect(t, cfg)
	bomb := func() []byte {
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(cat([]byte{0x92}, eventTime(t0), mp(t, map[string]any{"log": strings.Repeat("a", 1<<20)})))
		zw.Close()
		return cat([]byte{0x93}, mp(t, "t"), mp(t, gz.Bytes()), mp(t, map[string]any{"compressed": "gzip"}))
	}()
	deep := cat([]byte{0x93}, mp(t, "t"), eventTime(t0), bytes.Repeat([]byte{0x81, 0xa1, 'k'}, 100), []byte{0xc0})
	for name, in := range map[string][]byte{
		"not msgpack":           []byte("GET / HTTP/1.1\r\n\r\n"),
		"not an array":          mp(t, map[string]any{"a": 1}),
		"declared 4 GiB string": cat([]byte{0x93}, mp(t, "t"), []byte{0xdb, 0xff, 0xff, 0xff, 0xff}),
		"declared 4G entries":   cat([]byte{0x93}, mp(t, "t"), []byte{0xdd, 0xff, 0xff, 0xff, 0xff}),
		"time not a time":       cat([]byte{0x93}, mp(t, "t"), mp(t, true), mp(t, map[string]any{})),
		"larger than max":       cat([]byte{0x93}, mp(t, "t"), eventTime(t0), mp(t, map[string]any{"log": strings.Repeat("b", 100<<10)})),
		"gzip bomb":             bomb,
		"nested too deep":       deep,
		"cut off":               cat([]byte{0x93}, mp(t, "t"), eventTime(t0), []byte{0x81, 0xa3, 'l', 'o'}),
	} {
		c := dial(t, s.Addr())
		c.Write(in)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err == nil || func() bool { ne, ok := err.(net.Error); return ok && ne.Timeout() }() {
			t.Fatalf("%s: connection not closed (%v)", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: closed after %v", name, d)
		}
	}
	if n := len(r.all()); n != 0 {
		t.Fatalf("%d messages handled from malformed input", n)
	}
	c := dial(t, s.Addr())
	c.Write(cat([]byte{0x94}, mp(t, "t"), eventTime(t0), mp(t, map[string]any{"log": "fine"}), mp(t, map[string]any{"chunk": "ok"})))
	if got, err := readAck(t, c, 5*time.Second); err != nil || got != "ok" {
		t.Fatalf("after malformed input: ack %q, %v", got, err)
	}
}

// A record that is not a map, in a message that is otherwise whole, is
// kept as its text with a failure tag, and acknowledged.
func TestRecordNotAMapIsKept(t *testing.T) {
	s, r := collect(t, DefaultConfig())
	c := dial(t, s.Addr())
	c.Write(cat([]byte{0x94}, mp(t, "t"), eventTime(t0), mp(t, "just text"), mp(t, map[string]any{"chunk": "k"})))
	if got, err := readAck(t, c, 5*time.Second); err != nil || got != "k" {
		t.Fatalf("ack %q, %v", got, err)
	}
	m := r.all()
	if len(m) != 1 || string(m[0].Entries[0].Record) != `{"message":"just text","tags":["_forwardparsefailure"]}` {
		t.Fatalf("%d messages: %s", len(m), m[0].Entries[0].Record)
	}
}

// Past max_connections, further connections are closed at once.
func TestMaxConnections(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnections = 2
	s, _ := collect(t, cfg)
	a, b := dial(t, s.Addr()), dial(t, s.Addr())
	_, _ = a, b
	time.Sleep(100 * time.Millisecond)
	c := dial(t, s.Addr())
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("third connection: %v, want it closed", err)
	}
}

// A line Docker's fluentd driver split into parts (over 16 KiB) is one
// record, byte-exact; each part is acknowledged as it comes (the driver
// sends the next one only then).
func TestPartialMessagesJoined(t *testing.T) {
	s, r := collect(t, DefaultConfig())
	c := dial(t, s.Addr())
	line := strings.Repeat("0123456789", 4000) + "é"
	parts := []string{line[:16384], line[16384:32768], line[32768:]}
	for i, p := range parts {
		rec := map[string]any{"log": p, "container_id": "abc", "source": "stdout", "partial_message": "true",
			"partial_id": "p1", "partial_ordinal": string(rune('1' + i)), "partial_last": map[bool]string{true: "true", false: "false"}[i == len(parts)-1]}
		// As Docker with fluentd-request-ack: the next part only after
		// this one's ack.
		c.Write(cat([]byte{0x94}, mp(t, "docker.abc"), eventTime(t0), mp(t, rec), mp(t, map[string]any{"chunk": "c" + string(rune('1'+i))})))
		if got, err := readAck(t, c, 5*time.Second); err != nil || got != "c"+string(rune('1'+i)) {
			t.Fatalf("part %d: ack %q, %v", i+1, got, err)
		}
	}
	var got []Entry
	for _, m := range r.all() {
		got = append(got, m.Entries...)
	}
	if len(got) != 1 || gjson.GetBytes(got[0].Record, "log").String() != line || gjson.GetBytes(got[0].Record, "partial_id").Exists() ||
		gjson.GetBytes(got[0].Record, "source").String() != "stdout" {
		t.Fatalf("%d records; first: %.200s", len(got), got)
	}
}

func TestMap(t *testing.T) {
	for _, tc := range []struct{ name, rec, want string }{
		{"docker fluentd driver, JSON line",
			`{"container_id":"0123456789ab","container_name":"/orders-1","source":"stdout","log":"{\"level\":\"info\",\"msg\":\"paid\",\"request_id\":\"r-1\"}"}`,
			`{"level":"info","msg":"paid","request_id":"r-1","container":{"id":"0123456789ab","name":"orders-1"},"stream":"stdout","fluent":{"tag":"docker.orders"},"@timestamp":"2026-12-06T10:00:00.123456789Z"}`},
		{"docker fluentd driver, text line",
			`{"container_id":"0123456789ab","container_name":"/orders-1","source":"stderr","log":"panic: boom\n"}`,
			`{"message":"panic: boom","container":{"id":"0123456789ab","name":"orders-1"},"stream":"stderr","fluent":{"tag":"docker.orders"},"@timestamp":"2026-12-06T10:00:00.123456789Z"}`},
		{"fluent bit record with its own time",
			`{"time":"2026-12-06T09:59:59Z","level":"warn","message":"slow","service":"cart"}`,
			`{"time":"2026-12-06T09:59:59Z","level":"warn","message":"slow","service":"cart","fluent":{"tag":"docker.orders"}}`},
	} {
		got := Map("docker.orders", Entry{Time: t0, Record: []byte(tc.rec)})
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// FuzzRead: whatever arrives, read returns a message or an error, never
// panics, and every record it returns is a JSON object.
func FuzzRead(f *testing.F) {
	f.Add(cat([]byte{0x94}, mp(f, "t"), eventTime(t0), mp(f, map[string]any{"log": "x", "n": []any{1, 2.5, nil}}), mp(f, map[string]any{"chunk": "c"})))
	f.Add(cat([]byte{0x93}, mp(f, "t"), []byte{0x91, 0x92}, mp(f, 1), mp(f, map[string]any{"a": map[string]any{"b": true}})))
	f.Add(cat([]byte{0x92}, mp(f, "t"), mp(f, []byte{0x92, 0x01, 0x80})))
	s := &Server{cfg: DefaultConfig()}
	s.cfg.MaxMessageBytes = 1 << 16
	s.cfg.MaxDecompressedBytes = 1 << 16
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := s.read(bufioReader(in))
		if err != nil {
			return
		}
		for _, e := range m.Entries {
			if !gjson.ValidBytes(e.Record) || !gjson.ParseBytes(e.Record).IsObject() {
				t.Fatalf("record %q from %x", e.Record, in)
			}
			Map(m.Tag, e)
		}
	})
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// Docker reconnects when an ack is late and sends the unacknowledged part
// again on the new connection: the line's earlier parts, acknowledged on
// the old one, are still there, and the part sent twice counts once.
func TestPartialLineSurvivesAReconnect(t *testing.T) {
	s, r := collect(t, DefaultConfig())
	line := strings.Repeat("a", 16384) + strings.Repeat("b", 16384) + "end"
	parts := []string{line[:16384], line[16384:32768], line[32768:]}
	msg := func(i int) []byte {
		rec := map[string]any{"log": parts[i], "source": "stdout", "partial_message": "true", "partial_id": "p9",
			"partial_ordinal": fmt.Sprint(i + 1), "partial_last": fmt.Sprint(i == len(parts)-1)}
		return cat([]byte{0x94}, mp(t, "docker.abc"), eventTime(t0), mp(t, rec), mp(t, map[string]any{"chunk": fmt.Sprint("c", i)}))
	}
	a := dial(t, s.Addr())
	a.Write(msg(0))
	readAck(t, a, 5*time.Second)
	a.Write(msg(1))
	a.Close() // its ack is never read
	b := dial(t, s.Addr())
	for _, i := range []int{1, 2} {
		b.Write(msg(i))
		if got, err := readAck(t, b, 5*time.Second); err != nil || got != fmt.Sprint("c", i) {
			t.Fatalf("part %d: ack %q, %v", i+1, got, err)
		}
	}
	var got []Entry
	for _, m := range r.all() {
		got = append(got, m.Entries...)
	}
	if len(got) != 1 || gjson.GetBytes(got[0].Record, "log").String() != line {
		t.Fatalf("%d records: %.100s", len(got), got)
	}
}

// A line whose parts stop coming is stored as it is after partialTimeout
// (and at Close); open lines are bounded in bytes.
func TestOpenLinesExpireAndAreBounded(t *testing.T) {
	j := newJoiner(16 << 20)
	part := func(id string, n int) Entry {
		return Entry{Time: t0, Record: []byte(fmt.Sprintf(`{"log":%q,"partial_message":"true","partial_id":%q,"partial_ordinal":"1","partial_last":"false"}`, strings.Repeat("x", n), id))}
	}
	now := time.Now()
	if out, _ := j.add("t", []Entry{part("a", 10)}, now); len(out) != 0 {
		t.Fatalf("an open line came out: %d", len(out))
	}
	if got := j.expire(now.Add(partialTimeout/2), false); len(got) != 0 {
		t.Fatal("expired early")
	}
	got := j.expire(now.Add(partialTimeout), false)
	if len(got) != 1 || gjson.GetBytes(got[0].Entry.Record, "log").String() != strings.Repeat("x", 10) || gjson.GetBytes(got[0].Entry.Record, "partial_id").Exists() {
		t.Fatalf("expired: %v", got)
	}
	var evicted []Line
	for i := 0; i < 70; i++ {
		_, ev := j.add("t", []Entry{part(fmt.Sprint("big", i), 1<<20)}, now)
		evicted = append(evicted, ev...)
	}
	if j.bytes > maxOpenBytes || len(evicted) == 0 || len(evicted)+len(j.order) != 70 {
		t.Fatalf("%d bytes open, %d evicted, %d open", j.bytes, len(evicted), len(j.order))
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// With tls set, a sender speaks TLS (Fluent Bit's tls on) and is
// acknowledged; one that speaks plain Forward to it is closed, and one that
// never finishes its handshake does not hold its connection for ever.
func TestTLS(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TLS.Cert, cfg.TLS.Key = selfSigned(t)
	s, r := collect(t, cfg)
	tc, err := tls.Dial("tcp", s.Addr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	c := &client{tc, msgpack.NewDecoder(bufio.NewReader(tc))}
	c.Write(cat([]byte{0x94}, mp(t, "t"), eventTime(t0), mp(t, map[string]any{"log": "over tls"}), mp(t, map[string]any{"chunk": "k"})))
	if got, err := readAck(t, c, 5*time.Second); err != nil || got != "k" || len(r.all()) != 1 {
		t.Fatalf("over TLS: ack %q, %v, %d messages", got, err, len(r.all()))
	}
	plain := dial(t, s.Addr())
	plain.Write(cat([]byte{0x94}, mp(t, "t"), eventTime(t0), mp(t, map[string]any{"log": "plain"}), mp(t, map[string]any{"chunk": "p"})))
	if _, err := readAck(t, plain, 5*time.Second); err == nil || len(r.all()) != 1 {
		t.Fatalf("plain Forward to a TLS listener was taken (%v)", err)
	}
}
