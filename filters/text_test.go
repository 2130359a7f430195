package filters_test

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/filters"
)

// Each layout of testdata/text_lines.txt: line, then the @timestamp,
// log.level, log.logger and message the document must have ("-": absent),
// tab-separated. The line is read into a document by the whole chain.
func TestTextLines(t *testing.T) {
	f, err := os.Open("testdata/text_lines.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if sc.Text() == "" || strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 5 {
			t.Fatalf("testdata line %q: want 5 tab-separated fields", sc.Text())
		}
		line := strings.ReplaceAll(parts[0], `\t`, "\t")
		rec, ev := process(t, line)
		for i, path := range []string{"@timestamp", "log.level", "log.logger", "message"} {
			want := strings.ReplaceAll(parts[i+1], `\t`, "\t")
			got := gjson.GetBytes(rec.Doc, path)
			if want == "-" {
				if path == "@timestamp" {
					want = "2026-11-26T12:00:00.000Z" // when it was read
				} else if got.Exists() {
					t.Errorf("%q: %s = %q, want none", line, path, got.String())
					continue
				} else {
					continue
				}
			}
			if got.String() != want {
				t.Errorf("%q: %s = %q, want %q\n%s", line, path, got.String(), want, rec.Doc)
			}
		}
		headed := parts[1] != "-" || parts[2] != "-"
		if ev.HasTag(filters.TagJSONParseFailure) == headed {
			t.Errorf("%q: tagged %s: %v, want %v", line, filters.TagJSONParseFailure, !headed, headed)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d cases", n)
	}
}

// key=value pairs of a text line become fields, and request_id makes the
// line part of its request's trace.
func TestLogfmtPairsJoinTheTrace(t *testing.T) {
	rec, _ := process(t, `2024-05-01 12:00:00.278 WARN  [gateway] connection pool exhausted (active=50 idle=0 waiting=191), retrying in 250ms (attempt 4/5) request_id=cb4e0b8e-3127-46de-37d4-61f24b053142 thread=http-nio-8080-exec-150 msg="pool \"main\" full" http.status=503`)
	for path, want := range map[string]string{
		"@timestamp": "2024-05-01T12:00:00.278Z", "log.level": "warn", "log.logger": "gateway",
		"request_id": "cb4e0b8e-3127-46de-37d4-61f24b053142", "trace.id": "cb4e0b8e-3127-46de-37d4-61f24b053142",
		"http.request.id": "cb4e0b8e-3127-46de-37d4-61f24b053142", "thread": "http-nio-8080-exec-150",
		"msg": `pool "main" full`, "http.status": "503",
	} {
		if got := gjson.GetBytes(rec.Doc, path).String(); got != want {
			t.Errorf("%s = %q, want %q\n%s", path, got, want, rec.Doc)
		}
	}
	if rec.Index != "logs-2024.05.01" {
		t.Errorf("index %s, want the line's own day", rec.Index)
	}
	if !strings.HasPrefix(gjson.GetBytes(rec.Doc, "message").String(), "connection pool exhausted (active=50") {
		t.Errorf("message not kept whole: %s", rec.Doc)
	}
	// "(active=50" is no pair: a key starts a word.
	if gjson.GetBytes(rec.Doc, "active").Exists() || !gjson.GetBytes(rec.Doc, "idle").Exists() {
		t.Errorf("pairs: %s", rec.Doc)
	}
}

// A text timestamp without a zone is read in filters.text.timezone.
func TestTextTimezone(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	h, ok := filters.ParseTextHead("2024-05-01 12:00:00 INFO x", berlin, time.Now())
	if !ok || !h.Time.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("%v %v", h.Time, ok)
	}
}

// Whatever the line, the head parser neither panics nor reads past it, and
// what it returns is a suffix of the line.
func FuzzParseTextHead(f *testing.F) {
	for _, s := range []string{"2024-05-01 12:00:00.278 WARN  [gateway] x", "[02/Jan/2006:15:04:05 -0700] GET", "Jan  2 15:04:05 INFO a", "1714564800.278 DEBUG x", "[ERROR] x", "2024-05-01T12:00:00,1+0530 e", "[2024-05-01", "9999999999999."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		h, ok := filters.ParseTextHead(line, nil, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if ok && !strings.Contains(line, h.Message) {
			t.Fatalf("message %q is not in the line %q", h.Message, line)
		}
	})
}

// Pairs come out in order, each key valid and found in the line.
func FuzzParseLogfmt(f *testing.F) {
	for _, s := range []string{`a=1 b="x y" c=`, `k="unterminated`, `x.y-z=1 =2 a==b`, `a=\"b\" c="d\"e\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at := 0
		filters.ParseLogfmt(s, func(k, v string) bool {
			i := strings.Index(s[at:], k+"=")
			if i < 0 || k == "" {
				t.Fatalf("key %q not found after %d in %q", k, at, s)
			}
			at += i + len(k) + 1
			return true
		})
	})
}
