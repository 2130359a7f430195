package syslog

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

var now = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func TestParseAndMap(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string // gjson path → value (Raw for numbers)
	}{
		{"RFC 5424 with structured data and a BOM",
			"<165>1 2026-12-06T09:59:58.123456+01:00 mymachine.example.com evntslog 4711 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Appl\\\"ication\" eventID=\"1011\"][opentelemetry trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\" span_id=\"00f067aa0ba902b7\"] \uFEFFAn application event log entry...",
			map[string]string{"log.syslog.priority": "165", "log.syslog.facility.code": "20", "log.syslog.facility.name": "local4", "log.syslog.severity.code": "5",
				"log.syslog.severity.name": "Notice", "log.level": "notice", "log.syslog.hostname": "mymachine.example.com", "host.name": "mymachine.example.com",
				"log.syslog.appname": "evntslog", "log.syslog.procid": "4711", "log.syslog.msgid": "ID47", "log.syslog.version": "1",
				`log.syslog.structured_data.exampleSDID@32473.eventSource`: `Appl"ication`, "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "span.id": "00f067aa0ba902b7",
				"@timestamp": "2026-12-06T08:59:58.123456Z", "message": "An application event log entry..."}},
		{"RFC 5424, nil fields, JSON body",
			`<14>1 - - - - - - {"level":"error","msg":"boom","request_id":"r-9","time":"2026-12-06T09:00:00Z"}`,
			map[string]string{"log.syslog.priority": "14", "level": "error", "msg": "boom", "request_id": "r-9", "time": "2026-12-06T09:00:00Z", "log.level": "", "@timestamp": "", "host.name": ""}},
		{"RFC 3164 with hostname and pid",
			"<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
			map[string]string{"log.syslog.priority": "34", "log.syslog.facility.name": "auth", "log.level": "critical", "log.syslog.hostname": "mymachine",
				"log.syslog.appname": "su", "log.syslog.procid": "230", "message": "'su root' failed for lonvick on /dev/pts/8", "@timestamp": "2026-10-11T22:14:15Z"}},
		{"RFC 3164 without hostname (Docker's unix-socket format)",
			"<30>Dec  5 23:59:59 orders/abc123[1]: plain text",
			map[string]string{"log.syslog.appname": "orders/abc123", "log.syslog.procid": "1", "message": "plain text", "@timestamp": "2026-12-05T23:59:59Z", "log.syslog.hostname": ""}},
		{"RFC 3164, the year that is nearest (December in January)",
			"<13>Dec 31 23:59:59 host app: last of the year",
			map[string]string{"@timestamp": "2025-12-31T23:59:59Z"}},
		{"nginx access_log syslog",
			`<190>Dec  6 09:59:59 gw nginx: {"remote_addr":"10.0.0.1","request_id":"abc","status":200}`,
			map[string]string{"log.syslog.appname": "nginx", "remote_addr": "10.0.0.1", "status": "200", "log.level": "info"}},
		{"not syslog", "hello world",
			map[string]string{"message": "hello world", "tags.0": TagParseFailure, "log.syslog.priority": ""}},
		{"priority out of range", "<999>1 - - - - - - x",
			map[string]string{"message": "<999>1 - - - - - - x", "tags.0": TagParseFailure}},
	} {
		at := now
		if strings.Contains(tc.name, "December in January") {
			at = time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)
		}
		m, ok := Parse([]byte(tc.in), at, time.UTC)
		doc := Map(&m, ok)
		if !gjson.ValidBytes(doc) {
			t.Fatalf("%s: invalid JSON %s", tc.name, doc)
		}
		for path, want := range tc.want {
			r := gjson.GetBytes(doc, path)
			got := r.String()
			if want == "" && r.Exists() {
				t.Errorf("%s: %s = %q, want it absent\n%s", tc.name, path, got, doc)
			} else if want != "" && got != want {
				t.Errorf("%s: %s = %q, want %q\n%s", tc.name, path, got, want, doc)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"<165>1 2026-12-06T09:59:58Z h a p m [x a=\"b\\]\"] msg", "<34>Oct 11 22:14:15 mymachine su[230]: x", "<0>", "<1>1 ", "[", "<13>Dec 31 23:59:59 a b: c"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, ok := Parse(in, now, time.UTC)
		if doc := Map(&m, ok); !gjson.ValidBytes(doc) {
			t.Fatalf("invalid JSON from %q: %s", in, doc)
		}
	})
}

type got struct {
	mu   sync.Mutex
	msgs []string
}

func (g *got) all() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.msgs...)
}

func serve(t *testing.T, cfg Config) (*Server, *got) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	g := &got{}
	s, err := Listen(cfg, func(msg []byte, _ time.Time) {
		g.mu.Lock()
		g.msgs = append(g.msgs, string(msg))
		g.mu.Unlock()
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, g
}

func waitFor(t *testing.T, g *got, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := g.all(); len(m) >= n {
			return m
		}
	}
	t.Fatalf("%d messages, want %d: %q", len(g.all()), n, g.all())
	return nil
}

// UDP datagrams, TCP with newlines and TCP with octet counting (a message
// holding a newline stays one), mixed on one connection.
func TestFramings(t *testing.T) {
	s, g := serve(t, DefaultConfig())
	u, _ := net.Dial("udp", s.Addr())
	defer u.Close()
	u.Write([]byte("<13>1 - - - - - - over udp\n"))
	waitFor(t, g, 1) // UDP and TCP are read apart: their order is only kept within each
	c, _ := net.Dial("tcp", s.Addr())
	defer c.Close()
	c.Write([]byte("<13>Dec  6 09:00:00 h app: by newline\n"))
	octet := "<13>1 - - - - - - two\nlines"
	fmt.Fprintf(c, "%d %s", len(octet), octet)
	c.Write([]byte("<13>1 - - - - - - newline again\n"))
	got := waitFor(t, g, 4)
	want := []string{"<13>1 - - - - - - over udp\n", "<13>Dec  6 09:00:00 h app: by newline\n", octet, "<13>1 - - - - - - newline again\n"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// Bad framing closes its connection (a declared length past the limit is
// never read, let alone allocated), and the server serves on.
func TestBadFramingClosesTheConnection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMessageBytes = 1024
	cfg.ReadTimeout = 200 * time.Millisecond
	s, g := serve(t, cfg)
	for name, in := range map[string]string{
		"declared length past the limit": "99999999 <13>",
		"length not a number":            "12x <13>1 - - - - - - x",
		"no newline within the limit":    "<13>" + strings.Repeat("a", 5000),
		"message cut short":              "50 <13>1 short",
	} {
		c, _ := net.Dial("tcp", s.Addr())
		c.Write([]byte(in))
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("%s: %v, want the connection closed", name, err)
		}
		c.Close()
	}
	if m := g.all(); len(m) != 0 {
		t.Fatalf("taken from bad frames: %q", m)
	}
	c, _ := net.Dial("tcp", s.Addr())
	defer c.Close()
	c.Write([]byte("<13>1 - - - - - - fine\n"))
	waitFor(t, g, 1)
}

// The util-linux logger, a real sender: UDP, TCP with octet counting,
// RFC 5424 and RFC 3164.
func TestLoggerUtility(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Fatal("no logger(1): install util-linux's logger (Debian's bsdutils; .ci/run does)")
	}
	s, g := serve(t, DefaultConfig())
	host, port, _ := net.SplitHostPort(s.Addr())
	runs := [][]string{
		{"-d", "--rfc5424", "--sd-id", "origin@32473", "--sd-param", `software="logger"`},
		{"-T", "--octet-count", "--rfc5424"},
		{"-T", "--rfc3164"},
	}
	for i, args := range runs {
		args = append([]string{"-n", host, "-P", port, "-t", "orders", "-p", "local0.warning"}, args...)
		if out, err := exec.Command("logger", append(args, fmt.Sprintf("message %d", i))...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v %s", args, err, out)
		}
	}
	msgs := waitFor(t, g, len(runs))
	for i, raw := range msgs {
		m, ok := Parse([]byte(raw), time.Now(), time.UTC)
		doc := Map(&m, ok)
		if !ok || gjson.GetBytes(doc, "log.syslog.appname").String() != "orders" || gjson.GetBytes(doc, "log.syslog.facility.name").String() != "local0" ||
			gjson.GetBytes(doc, "log.level").String() != "warn" || !strings.HasPrefix(gjson.GetBytes(doc, "message").String(), "message ") ||
			time.Since(m.Timestamp) > time.Minute {
			t.Fatalf("run %d: %q → %s", i, raw, doc)
		}
		if i == 0 && gjson.GetBytes(doc, "log.syslog.structured_data.origin@32473.software").String() != "logger" {
			t.Fatalf("structured data not read: %s", doc)
		}
	}
}
