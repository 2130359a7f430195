package filters_test

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/pipeline"
)

func TestNginxAccessLogs(t *testing.T) {
	type want map[string]string // path → value as gjson prints it ("" = absent)
	cases := []struct {
		name, line string
		want       want
	}{
		{"combined with key=value timings",
			`203.0.113.7 - alice [26/Nov/2026:10:15:00 +0100] "POST /api/orders?x=1 HTTP/1.1" 502 157 "https://shop.example/" "curl/8.5.0" request_id=7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b request_time=0.250 upstream_response_time=0.100, 0.148 upstream_addr=10.0.0.5:8080, 10.0.0.6:8080`,
			want{"source.ip": "203.0.113.7", "user.name": "alice", "http.request.method": "POST", "url.original": "/api/orders?x=1",
				"url.path": "/api/orders", "url.query": "x=1", "http.version": "1.1", "http.response.status_code": "502",
				"http.response.body.bytes": "157", "http.request.referrer": "https://shop.example/", "user_agent.original": "curl/8.5.0",
				"http.request.id": "7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b", "trace.id": "7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b",
				"event.duration": "250000000", "nginx.upstream.response_time": "0.248", "nginx.upstream.address": "10.0.0.5:8080, 10.0.0.6:8080",
				"@timestamp": "2026-11-26T09:15:00.000Z", "event.dataset": "nginx.access", "service.name": "nginx", "tags": ""}},
		{"combined, no user, short keys, quoted values",
			`::1 - - [26/Nov/2026:10:15:00 +0000] "GET / HTTP/2.0" 200 0 "-" "Mozilla/5.0 (X11)" rid=abc rt=0.001 urt="-" ua="-"`,
			want{"source.ip": "::1", "user.name": "", "http.request.method": "GET", "url.path": "/", "http.version": "2.0",
				"http.request.referrer": "", "user_agent.original": "Mozilla/5.0 (X11)", "http.request.id": "abc",
				"event.duration": "1000000", "nginx.upstream.response_time": "", "nginx.upstream.address": ""}},
		{"combined with a bare request id after the user agent",
			`10.1.2.3 - - [26/Nov/2026:10:15:00 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe/1.30" 0123456789abcdef0123456789abcdef`,
			want{"http.request.id": "0123456789abcdef0123456789abcdef", "url.path": "/health"}},
		{"common format (no referrer, no agent)",
			`192.0.2.1 - - [26/Nov/2026:10:15:00 +0000] "GET /a HTTP/1.0" 404 12`,
			want{"http.response.status_code": "404", "url.path": "/a", "user_agent.original": ""}},
		{"a garbage request line is kept as it came",
			`192.0.2.1 - - [26/Nov/2026:10:15:00 +0000] "\x16\x03\x01" 400 150 "-" "-"`,
			want{"http.response.status_code": "400", "http.request.method": "", "url.original": ""}},
		{"escape=json",
			`{"time_iso8601":"2026-11-26T10:15:00+01:00","remote_addr":"198.51.100.9","request":"DELETE /api/cart/7 HTTP/1.1","status":"204","body_bytes_sent":"0","http_user_agent":"okhttp","request_id":"r-42","request_time":"0.012","upstream_response_time":"0.011","upstream_addr":"10.0.0.7:80"}`,
			want{"source.ip": "198.51.100.9", "http.request.method": "DELETE", "url.path": "/api/cart/7", "http.response.status_code": "204",
				"http.request.id": "r-42", "trace.id": "r-42", "event.duration": "12000000", "nginx.upstream.response_time": "0.011",
				"@timestamp": "2026-11-26T09:15:00.000Z", "remote_addr": "", "status": "", "request": ""}},
		{"escape=json with msec (the compose stack's gateway)",
			`{"time_iso8601":"2026-11-26T10:15:00+00:00","msec":"1795688100.250","remote_addr":"172.18.0.1","request":"POST /orders HTTP/1.1","status":"200","request_id":"abc","request_time":"0.004"}`,
			want{"@timestamp": "2026-11-26T10:15:00.250Z", "event.duration": "4000000", "msec": "", "http.request.id": "abc"}},
		{"escape=json with method and uri apart",
			`{"remote_addr":"198.51.100.9","request_method":"GET","request_uri":"/p?q=2","status":"200","request_id":"r-43"}`,
			want{"http.request.method": "GET", "url.path": "/p", "url.query": "q=2", "request_uri": ""}},
		{"an application's JSON line is not an access log",
			`{"level":"info","msg":"GET /x 200","status":"200","request_id":"r-1"}`,
			want{"http.request.method": "", "status": "200", "event.dataset": ""}},
		{"W3C traceparent gives the trace id",
			`{"msg":"charged","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
			want{"trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "http.request.id": "4bf92f3577b34da6a3ce929d0e0e4736"}},
		{"a request id field wins over traceparent",
			`{"msg":"charged","request_id":"r-9","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
			want{"trace.id": "r-9"}},
		{"a broken traceparent is no id",
			`{"msg":"charged","traceparent":"00-xyz-00f067aa0ba902b7-01"}`,
			want{"trace.id": ""}},
		{"plain text stays plain text",
			`just some words in a line`,
			want{"message": "just some words in a line", "tags": `["_jsonparsefailure"]`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, _ := process(t, c.line)
			for path, v := range c.want {
				got := gjson.GetBytes(rec.Doc, path)
				if v == "" {
					if got.Exists() {
						t.Errorf("%s = %s, want absent", path, got.Raw)
					}
					continue
				}
				if got.String() != v && got.Raw != v {
					t.Errorf("%s = %s, want %s", path, got.Raw, v)
				}
			}
			if t.Failed() {
				t.Logf("doc: %s", rec.Doc)
			}
		})
	}
}

// Whatever a line holds, the filter gives valid JSON and keeps the line.
func FuzzNginx(f *testing.F) {
	f.Add(`203.0.113.7 - alice [26/Nov/2026:10:15:00 +0100] "POST /api HTTP/1.1" 502 157 "r" "a" request_id=x rt=0.2 urt="0.1 : -"`)
	f.Add(`::1 - - [x] "" 200 0 "-" "-" a= ="" rt=-1e309`)
	f.Add(`{"remote_addr":"1","request":"G","status":"1"}`)
	f.Fuzz(func(t *testing.T, line string) {
		idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
		p := filters.NewProcessor(idx, nil)
		var ev pipeline.Event
		rec := p.Process(&pipeline.Envelope{ID: "i", ReadAt: readAt, Line: []byte(line)}, &ev, nil)
		if !gjson.ValidBytes(rec.Doc) {
			t.Fatalf("invalid JSON %s", rec.Doc)
		}
		if ev.Doc == nil && strings.TrimSpace(line) != "" && !gjson.GetBytes(rec.Doc, "message").Exists() {
			t.Fatalf("line lost: %s", rec.Doc)
		}
	})
}
