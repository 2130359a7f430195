package filters

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// Nginx reads the API gateway's access log lines into ECS fields, so the
// entry request of every trace (method, path, status, client, timing) is
// known and the request id it stamped is found:
//
//   - the combined format, with any `key=value` pairs after it, e.g.
//
//     log_format logweave '$remote_addr - $remote_user [$time_local] "$request" '
//     '$status $body_bytes_sent "$http_referer" "$http_user_agent" '
//     'request_id=$request_id request_time=$request_time '
//     'upstream_response_time=$upstream_response_time upstream_addr=$upstream_addr msec=$msec';
//
//     (rid, rt, urt and ua are accepted for the last four; a bare 32-hex
//     token after the user agent is taken as the request id);
//
//   - JSON lines written with `log_format ... escape=json` whose keys are
//     nginx's variable names (remote_addr, request or request_method and
//     request_uri, status, ...).
//
// It writes source.address (and source.ip), user.name, http.request.method,
// url.original, url.path, url.query, http.version,
// http.response.status_code, http.response.body.bytes,
// http.request.referrer, user_agent.original, http.request.id,
// event.duration (request_time, in nanoseconds),
// nginx.upstream.response_time (seconds, summed over the upstreams tried),
// nginx.upstream.address, @timestamp from msec (when the response went out,
// to the millisecond: what a trace's timing needs), time_local or time_iso8601,
// event.dataset nginx.access and service.name nginx (unless set). Other
// lines pass untouched.
type Nginx struct{}

// access is one access log line's values, as nginx wrote them.
type access struct {
	addr, user, timeLocal, timeISO            string
	request, method, uri                      string
	status, bytes, referer, agent             string
	requestID, requestTime, upstreamTime, ups string
	msec                                      string // $msec: the end, to the millisecond
}

// Apply implements Filter.
func (Nginx) Apply(e *pipeline.Event) {
	var a access
	if e.Doc == nil {
		if !parseCombined(strings.TrimRight(string(e.Line), "\r\n"), &a) {
			return
		}
		e.RemoveTag(TagJSONParseFailure)
	} else if !a.fromJSON(e) {
		return
	}
	a.apply(e)
}

// parseCombined reads `$remote_addr - $remote_user [$time_local] "$request"
// $status $body_bytes_sent "$http_referer" "$http_user_agent"` and what
// follows it.
func parseCombined(s string, a *access) bool {
	var ok bool
	if a.addr, s, ok = cutSpace(s); !ok || a.addr == "" {
		return false
	}
	if dash, rest, ok := cutSpace(s); !ok || dash != "-" {
		return false
	} else {
		s = rest
	}
	if a.user, s, ok = cutSpace(s); !ok {
		return false
	}
	if len(s) == 0 || s[0] != '[' {
		return false
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return false
	}
	a.timeLocal, s = s[1:end], strings.TrimPrefix(s[end+1:], " ")
	if a.request, s, ok = cutQuoted(s); !ok {
		return false
	}
	if a.status, s, ok = cutSpace(s); !ok || !digits(a.status) {
		return false
	}
	a.bytes, s, _ = cutSpace(s)
	if !digits(a.bytes) && a.bytes != "-" {
		return false
	}
	if s == "" {
		return true // the common format
	}
	if a.referer, s, ok = cutQuoted(s); !ok {
		return false
	}
	if a.agent, s, ok = cutQuoted(s); !ok {
		return false
	}
	var last *string // the value a list continues ("0.1, 0.2 : 0.3" unquoted)
	for s != "" {
		var tok string
		if tok, s, ok = cutToken(s); !ok {
			return false
		}
		k, v, kv := strings.Cut(tok, "=")
		if !kv {
			switch {
			case last != nil && (strings.HasSuffix(*last, ",") || strings.HasSuffix(*last, ":") || tok == ":"):
				*last += " " + tok
			case len(tok) == 32 && hex(tok) && a.requestID == "":
				a.requestID = tok
			}
			continue
		}
		last = nil
		switch k {
		case "request_id", "rid", "req_id":
			a.requestID = v
		case "request_time", "rt":
			a.requestTime = v
		case "upstream_response_time", "urt":
			a.upstreamTime, last = v, &a.upstreamTime
		case "upstream_addr", "ua":
			a.ups, last = v, &a.ups
		case "msec":
			a.msec = v
		}
	}
	return true
}

// cutSpace returns the text up to the next space and what follows it.
func cutSpace(s string) (tok, rest string, ok bool) {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", s != ""
}

// cutQuoted returns the inside of the "..." s starts with (nginx writes a
// quote inside as \x22, so the next quote ends it) and what follows.
func cutQuoted(s string) (in, rest string, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", s, false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", s, false
	}
	return s[1 : 1+end], strings.TrimPrefix(s[2+end:], " "), true
}

// cutToken returns a key=value or key="quoted value" or bare token.
func cutToken(s string) (tok, rest string, ok bool) {
	s = strings.TrimLeft(s, " ")
	if i := strings.Index(s, `="`); i >= 0 && !strings.ContainsRune(s[:i], ' ') {
		in, rest, ok := cutQuoted(s[i+1:])
		return s[:i+1] + in, rest, ok
	}
	tok, rest, _ = cutSpace(s)
	return tok, rest, true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func hex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// nginxJSONKeys are the variables an escape=json access log names its keys
// after; the ones read are removed, their values move to ECS fields.
var nginxJSONKeys = [...]string{"remote_addr", "remote_user", "time_local", "time_iso8601", "request", "request_method",
	"request_uri", "status", "body_bytes_sent", "http_referer", "http_user_agent", "request_id", "request_time",
	"upstream_response_time", "upstream_addr", "msec"}

// fromJSON reads an escape=json access log line: one with remote_addr,
// status and the request.
func (a *access) fromJSON(e *pipeline.Event) bool {
	if e.Edited() {
		return false // another filter made it something else
	}
	top := e.TopLevel()
	gateway := false
	for i := range top {
		gateway = gateway || top[i].Key == "remote_addr"
	}
	if !gateway {
		return false // the common case: an application's line, one look per key
	}
	var vals [len(nginxJSONKeys)]string
	var found [len(nginxJSONKeys)]bool
	for _, m := range top {
		for i, k := range nginxJSONKeys {
			if m.Key == k {
				v := m.Value()
				vals[i], found[i] = v.String(), true
				break
			}
		}
	}
	if !found[0] || !found[7] || !(found[4] || found[5]) {
		return false
	}
	*a = access{addr: vals[0], user: vals[1], timeLocal: vals[2], timeISO: vals[3], request: vals[4], method: vals[5],
		uri: vals[6], status: vals[7], bytes: vals[8], referer: vals[9], agent: vals[10], requestID: vals[11],
		requestTime: vals[12], upstreamTime: vals[13], ups: vals[14], msec: vals[15]}
	if !digits(a.status) {
		return false
	}
	for i, k := range nginxJSONKeys {
		if found[i] {
			e.Delete(k)
		}
	}
	return true
}

// apply writes the ECS fields.
func (a *access) apply(e *pipeline.Event) {
	set := func(path, v string) {
		if v != "" && v != "-" {
			e.SetString(path, v)
		}
	}
	set("source.address", a.addr)
	if net.ParseIP(a.addr) != nil {
		e.SetString("source.ip", a.addr)
	}
	set("user.name", a.user)
	method, uri, version := a.method, a.uri, ""
	if a.request != "" {
		if m, rest, ok := strings.Cut(a.request, " "); ok {
			method, uri = m, rest
			if u, v, ok := strings.Cut(rest, " "); ok {
				uri, version = u, strings.TrimPrefix(v, "HTTP/")
			}
		}
	}
	set("http.request.method", method)
	set("url.original", uri)
	if uri != "" && uri[0] == '/' {
		path, query, _ := strings.Cut(uri, "?")
		set("url.path", path)
		set("url.query", query)
	}
	set("http.version", version)
	if n, err := strconv.Atoi(a.status); err == nil {
		e.SetInt("http.response.status_code", int64(n))
	}
	if n, err := strconv.ParseInt(a.bytes, 10, 64); err == nil {
		e.SetInt("http.response.body.bytes", n)
	}
	set("http.request.referrer", a.referer)
	set("user_agent.original", a.agent)
	set("http.request.id", a.requestID)
	if f, err := strconv.ParseFloat(a.requestTime, 64); err == nil && f >= 0 {
		e.SetInt("event.duration", int64(f*1e9+0.5))
	}
	if t, ok := upstreamSeconds(a.upstreamTime); ok {
		e.Set("nginx.upstream.response_time", e.Bytes(strconv.AppendFloat(nil, t, 'f', -1, 64)))
	}
	set("nginx.upstream.address", a.ups)
	if t, ok := ParseTime(gjson.Result{Type: gjson.String, Str: a.msec}); ok && a.msec != "" {
		setTime(e, t) // $msec: more precise than $time_local's seconds
	} else if t, err := time.Parse("02/Jan/2006:15:04:05 -0700", a.timeLocal); err == nil {
		setTime(e, t)
	} else if t, err := time.Parse(time.RFC3339, a.timeISO); err == nil {
		setTime(e, t)
	}
	e.SetString("event.dataset", "nginx.access")
	if !e.Get("service.name").Exists() && !e.Get("service").Exists() {
		e.SetString("service.name", "nginx")
	}
}

func setTime(e *pipeline.Event, t time.Time) {
	var buf [40]byte
	b := append(buf[:0], '"')
	b = pipeline.AppendTimestamp(b, t)
	e.Set("@timestamp", e.Bytes(append(b, '"')))
}

// upstreamSeconds sums $upstream_response_time over the upstreams tried
// ("0.010, 0.020 : 0.030"); "-" parts (no response) count nothing.
func upstreamSeconds(s string) (float64, bool) {
	if s == "" || s == "-" {
		return 0, false
	}
	var sum float64
	any := false
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ':' || r == ' ' }) {
		if part == "-" {
			continue
		}
		f, err := strconv.ParseFloat(part, 64)
		if err != nil || f < 0 {
			return 0, false
		}
		sum += f
		any = true
	}
	return sum, any
}
