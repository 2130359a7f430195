package privacy

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

const testKey = "0123456789abcdef0123456789abcdef-test"

func newRedactor(t *testing.T, mut func(*Config)) *Redactor {
	t.Helper()
	c := DefaultConfig()
	c.Key = Keys{testKey}
	c.Fields = []FieldRule{
		{Paths: []string{"user.id", "user.email", "user.name"}, Action: Pseudonymize},
		{Paths: []string{"source.ip", "client.ip"}, Action: TruncateIP},
		{Paths: []string{"http.request.headers.authorization", "password", "*.password", "*.secret"}, Action: Drop},
	}
	if mut != nil {
		mut(&c)
	}
	r, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedact(t *testing.T) {
	r := newRedactor(t, nil)
	alice := r.Pseudonyms("alice@example.com")[0]
	for _, tc := range []struct{ name, in, want string }{
		{"clean document untouched",
			`{"@timestamp":"2026-12-06T10:00:00.000Z","message":"order 12345 shipped in 1.2.3 build","trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","event":{"id":"x"}}`,
			""},
		{"email in the message masked",
			`{"message":"mail to alice@example.com failed","log":{"level":"warn"}}`,
			`{"message":"mail to [email] failed","log":{"level":"warn"},"labels":{"redacted":true}}`},
		{"user fields pseudonymised, the same value the same pseudonym",
			`{"user":{"id":"alice@example.com","email":"alice@example.com","roles":["admin"]}}`,
			`{"user":{"id":"` + alice + `","email":"` + alice + `","roles":["admin"]},"labels":{"redacted":true}}`},
		{"numbers pseudonymised as text",
			`{"user":{"id":4711}}`,
			`{"user":{"id":"` + r.Pseudonyms("4711")[0] + `"},"labels":{"redacted":true}}`},
		{"ips truncated; lists too",
			`{"source":{"ip":"203.0.113.77"},"client":{"ip":"2001:db8:85a3:1234::8a2e:370:7334, 198.51.100.9"}}`,
			`{"source":{"ip":"203.0.113.0"},"client":{"ip":"2001:db8:85a3::, 198.51.100.0"},"labels":{"redacted":true}}`},
		{"secrets dropped, first member, nested and last",
			`{"password":"hunter2","db":{"password":"x","host":"db1"},"http":{"request":{"headers":{"authorization":"Basic eA=="}}},"z":{"secret":"s"}}`,
			`{"db":{"host":"db1"},"http":{"request":{"headers":{}}},"z":{},"labels":{"redacted":true}}`},
		{"allowed fields never scanned",
			`{"http":{"request":{"id":"alice@example.com"}},"message":"ok"}`,
			""},
		{"escaped text unescaped, scanned, encoded again",
			`{"message":"line\nto alice\u0040example.com \"quoted\""}`,
			`{"message":"line\nto [email] \"quoted\"","labels":{"redacted":true}}`},
		{"card in an array of strings and in objects in it",
			`{"items":["4111 1111 1111 1111",{"note":"card 5500-0000-0000-0004"},7]}`,
			`{"items":["[credit_card]",{"note":"card [credit_card]"},7],"labels":{"redacted":true}}`},
		{"labels kept, redacted added",
			`{"labels":{"team":"pay"},"message":"from 10.1.2.3 at 4"}`,
			`{"labels":{"redacted":true,"team":"pay"},"message":"from [ipv4] at 4"}`},
		{"labels empty",
			`{"labels":{},"message":"bearer abcdefgh12345678"}`,
			`{"labels":{"redacted":true},"message":"bearer [bearer_token]"}`},
		{"labels.redacted a sender's: set true, never twice",
			`{"labels":{"redacted":false},"message":"a@example.org"}`,
			`{"labels":{"redacted":true},"message":"[email]"}`},
		{"everything dropped",
			`{"password":"p"}`,
			`{"labels":{"redacted":true}}`},
		{"whitespace as it came",
			"{ \"message\" : \"x a@example.org\" ,\n \"n\": 1 }",
			`{"message":"x [email]","n":1,"labels":{"redacted":true}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n := r.Redact(nil, []byte(tc.in))
			want := tc.want
			if want == "" {
				want = tc.in
				if n != 0 {
					t.Fatalf("%d redactions in a clean document: %s", n, got)
				}
			}
			if string(got) != want {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
		})
	}
}

func TestRedactActions(t *testing.T) {
	doc := `{"message":"card 4111111111111111 by alice@example.com","other":"x","user":{"name":"Alice"}}`
	pseudo := newRedactor(t, func(c *Config) { c.Detect.Action = Pseudonymize })
	got, _ := pseudo.Redact(nil, []byte(doc))
	want := `{"message":"card ` + pseudo.Pseudonyms("4111111111111111")[0] + ` by ` + pseudo.Pseudonyms("alice@example.com")[0] +
		`","other":"x","user":{"name":"` + pseudo.Pseudonyms("Alice")[0] + `"},"labels":{"redacted":true}}`
	if string(got) != want {
		t.Fatalf("pseudonymize:\n got %s\nwant %s", got, want)
	}
	drop := newRedactor(t, func(c *Config) { c.Detect.Action = DropField })
	got, n := drop.Redact(nil, []byte(doc))
	if want := `{"other":"x","user":{"name":"` + drop.Pseudonyms("Alice")[0] + `"},"labels":{"redacted":true}}`; string(got) != want || n != 3 {
		t.Fatalf("drop_field: %d\n got %s\nwant %s", n, got, want)
	}
	mask := newRedactor(t, func(c *Config) {
		c.Fields = []FieldRule{{Paths: []string{"user.*"}, Action: Mask}}
		c.Detect.Kinds = []Kind{}
	})
	got, _ = mask.Redact(nil, []byte(doc))
	if want := `{"message":"card 4111111111111111 by alice@example.com","other":"x","user":{"name":"[redacted]"},"labels":{"redacted":true}}`; string(got) != want {
		t.Fatalf("mask field, detection off:\n got %s\nwant %s", got, want)
	}
}

// Rotation: new pseudonyms use the first key; Pseudonyms gives the
// value's under every key, for erase.
func TestKeyRotation(t *testing.T) {
	old := newRedactor(t, nil)
	rotated := newRedactor(t, func(c *Config) { c.Key = Keys{strings.Repeat("n", 32), testKey} })
	p := rotated.Pseudonyms("alice")
	if len(p) != 2 || p[1] != old.Pseudonyms("alice")[0] || p[0] == p[1] || len(p[0]) != 32 {
		t.Fatalf("pseudonyms %v (old %v)", p, old.Pseudonyms("alice"))
	}
	got, _ := rotated.Redact(nil, []byte(`{"user":{"id":"alice"}}`))
	if !strings.Contains(string(got), p[0]) {
		t.Fatalf("not the newest key's: %s", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Fields = []FieldRule{{Paths: []string{"user.id"}, Action: Pseudonymize}} }, "privacy.key: pseudonymize needs a key"},
		{func(c *Config) { c.Detect.Action = Pseudonymize }, "privacy.key: pseudonymize needs a key"},
		{func(c *Config) { c.Key = Keys{"short"} }, "privacy.key[0]: 5 bytes"},
		{func(c *Config) { c.Fields = []FieldRule{{Paths: []string{"a"}, Action: "hash"}} }, "privacy.fields[0].action"},
		{func(c *Config) { c.Fields = []FieldRule{{Action: Drop}} }, "privacy.fields[0].paths"},
		{func(c *Config) { c.Detect.Kinds = []Kind{"phone"} }, "privacy.detect.kinds"},
		{func(c *Config) { c.Detect.Action = "hash" }, "privacy.detect.action"},
	} {
		c := DefaultConfig()
		tc.mut(&c)
		if err := c.Validate("privacy"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v", tc.want, err)
		}
	}
	c := DefaultConfig()
	if err := c.Validate("privacy"); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// Any JSON object: the result is JSON, and with mask nothing detection
// finds is left in any of its strings.
func FuzzRedact(f *testing.F) {
	f.Add(`{"message":"mail alice@example.com","user":{"id":1,"password":"x"},"a":[{"b":"10.0.0.1"},"4111 1111 1111 1111"]}`)
	f.Add(`{"labels":{"redacted":"no"},"source":{"ip":"::1"},"x":"\u0040\n"}`)
	f.Add(`{ "labels" : [ 1 ] , "password" : { } }`)
	r := newRedactor(&testing.T{}, nil)
	f.Fuzz(func(t *testing.T, doc string) {
		var v map[string]any
		if !utf8.ValidString(doc) || json.Unmarshal([]byte(doc), &v) != nil {
			return // invalid UTF-8 decodes to U+FFFD, which changes what is read
		}
		got, _ := r.Redact(nil, []byte(doc))
		var out map[string]any
		if err := json.Unmarshal(got, &out); err != nil {
			t.Fatalf("%s -> invalid %s: %v", doc, got, err)
		}
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case string:
				if ms := Find(x, nil); len(ms) > 0 {
					t.Fatalf("%s -> %s: %q still holds %v", doc, got, x, ms)
				}
			case map[string]any:
				for _, e := range x {
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		for k, e := range out {
			if k != "user" && k != "source" && k != "client" { // pseudonyms and truncated ips are meant to stay
				walk(e)
			}
		}
	})
}

// Not JSON (never from the collector's encoder): nothing of it is kept.
func TestRedactUnreadable(t *testing.T) {
	r := newRedactor(t, nil)
	for _, doc := range []string{`{"message":"alice@example.com`, `{"a":"4111 1111 1111 1111`, `{"user":{"id":`} {
		got, n := r.Redact(nil, []byte(doc))
		if n != 1 || string(got) != unreadable {
			t.Errorf("%q: %d %s", doc, n, got)
		}
	}
	// With nothing in it that could be redacted, it is passed on as it is.
	for _, doc := range []string{`{"a":`, `{"a"`, `{`} {
		if got, n := r.Redact(nil, []byte(doc)); n != 0 || string(got) != doc {
			t.Errorf("%q: %d %s", doc, n, got)
		}
	}
}

// The shipper's lines: JSON objects as documents, anything else as text.
func TestRedactLine(t *testing.T) {
	r := newRedactor(t, nil)
	for in, want := range map[string]string{
		`{"user":{"id":"alice"},"message":"from 10.0.0.9"}`:                   `{"user":{"id":"` + r.Pseudonyms("alice")[0] + `"},"message":"from [ipv4]","labels":{"redacted":true}}`,
		`2026-12-06 10:00:00 INFO login alice@example.com from 198.51.100.23`: `2026-12-06 10:00:00 INFO login [email] from [ipv4]`,
		`{not json, alice@example.com`:                                        `{not json, [email]`,
		`nothing to see here 1.2.3`:                                           `nothing to see here 1.2.3`,
	} {
		got, n := r.RedactLine(nil, []byte(in))
		if string(got) != want || (n == 0) != (in == want) {
			t.Errorf("%s:\n got %s (%d)\nwant %s", in, got, n, want)
		}
	}
	drop := newRedactor(t, func(c *Config) { c.Detect.Action = DropField })
	if got, _ := drop.RedactLine(nil, []byte("mail alice@example.com now")); string(got) != "mail [email] now" {
		t.Errorf("drop_field on a text line: %s", got)
	}
}

// BenchmarkRedact: a typical service log document with nothing to find
// (the common case: scanned, not copied), and one with an email and a
// pseudonymised user id.
func BenchmarkRedact(b *testing.B) {
	r := newRedactor(&testing.T{}, nil)
	for name, doc := range map[string]string{
		"clean": `{"@timestamp":"2026-12-06T10:00:00.123Z","log":{"level":"info"},"service":{"name":"orders"},"message":"handled step 3 of /api/orders: lorem ipsum dolor sit amet lorem ipsum dolor sit amet","request_id":"4bf92f3577b34da6a3ce929d0e0e4736","http":{"method":"POST","path":"/api/orders","status":200,"request":{"id":"4bf92f3577b34da6a3ce929d0e0e4736"}},"duration_ms":12.5,"user_id":"u-4711","trace":{"id":"4bf92f3577b34da6a3ce929d0e0e4736"},"host":{"name":"node-7"},"log.file.path":"/var/log/app/app.log","event":{"id":"v6NdyTps4K_ATVLIBjjEJldNzTo"}}`,
		"pii":   `{"@timestamp":"2026-12-06T10:00:00.123Z","log":{"level":"info"},"service":{"name":"orders"},"message":"order placed by alice@example.com","user":{"id":"alice@example.com"},"trace":{"id":"4bf92f3577b34da6a3ce929d0e0e4736"}}`,
	} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				r.Redact(buf[:0], []byte(doc))
			}
		})
	}
}

// RedactEvent rules detection out on the event's sources, rules on the
// document.
func TestRedactEvent(t *testing.T) {
	r := newRedactor(t, nil)
	line := `127.0.0.1 - - "GET /x?email=bob%40example.com"`
	doc := `{"message":"x","url":{"query":"email=bob@example.com"}}`
	if got, n := r.RedactEvent(nil, []byte(doc), line, "", "host", "/var/log/app.log"); n == 0 || strings.Contains(string(got), "bob@") {
		t.Fatalf("from a line with an address: %s", got)
	}
	clean := `{"message":"hello","source":{"ip":"203.0.113.7"}}` // source.ip made by a filter from a line the sources hold
	if got, n := r.RedactEvent(nil, []byte(clean), "hello 203.0.113.7", "", "h", ""); n == 0 || !strings.Contains(string(got), "203.0.113.0") {
		t.Fatalf("a rule's field: %s", got)
	}
	if got, n := r.RedactEvent(nil, []byte(`{"message":"hello"}`), "hello", `{"kubernetes.pod.name":"web-1"}`, "h", "/p"); n != 0 || string(got) != `{"message":"hello"}` {
		t.Fatalf("clean: %d %s", n, got)
	}
}
