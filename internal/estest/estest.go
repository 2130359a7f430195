// Package estest is an in-process Elasticsearch stand-in for tests. It speaks
// the parts of the REST API that logweave uses, the way Elasticsearch 8 does:
// the X-Elastic-Product header the official client checks, _bulk with one
// result per action in order (and per-item errors), index templates, _count,
// a small _search, and gzip request bodies. Faults can be injected per item
// (429s, mapping errors) or for whole requests (an outage).
package estest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// ItemFault decides the fate of one bulk item; status 0 accepts it.
type ItemFault func(index, id string, doc []byte) (status int, errType, reason string)

// Server is the stand-in. Use New, and Close when done.
type Server struct {
	*httptest.Server

	// Down makes every request fail with the status it holds (e.g. 503,
	// or 401 for a rotated password).
	Down atomic.Int32
	// Hang makes every request wait, unanswered, until the client gives
	// up, Hang is cleared or the server closes (a cluster that never
	// answers).
	Hang atomic.Bool
	// MaxContentLength, when set, refuses bulk requests whose body as sent
	// (compressed or not) is larger, with 413, as a proxy's
	// client_max_body_size or Elasticsearch's http.max_content_length does.
	MaxContentLength atomic.Int64
	// OmitItemStatus answers bulk items without their "status" (a broken
	// proxy or filter).
	OmitItemStatus atomic.Bool
	// KeepBodies keeps every request's body as received (decompressed),
	// for Bodies.
	KeepBodies atomic.Bool

	mu        sync.Mutex
	fault     ItemFault
	reqFault  RequestFault
	indices   map[string]map[string][]byte
	templates map[string][]byte
	bulks     int
	items     int
	seq       int64            // the last sequence number given
	seqNos    map[string]int64 // index+"\x00"+id -> the document's
	bodies    [][]byte
	tasks     []int // documents deleted by each _delete_by_query task
}

// Bodies are the request bodies received while KeepBodies was set, with
// their method and path first.
func (s *Server) Bodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

// New starts a server on a loopback port.
func New() *Server {
	s, err := NewOn("127.0.0.1")
	if err != nil {
		panic("estest: " + err.Error()) // as httptest.NewServer does
	}
	return s
}

// NewOn starts a server on a port of host (e.g. a Docker network's
// gateway, so containers reach it).
func NewOn(host string) (*Server, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	s := &Server{indices: map[string]map[string][]byte{}, templates: map[string][]byte{}, seqNos: map[string]int64{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Server.Listener.Close()
	s.Server.Listener = ln
	s.Server.Start()
	return s, nil
}

// RequestFault decides the fate of a whole bulk request from its
// (decompressed) body; status 0 lets it through.
type RequestFault func(body []byte) (status int, errType, reason string)

// SetRequestFault installs (or, with nil, removes) a whole-request fault.
func (s *Server) SetRequestFault(f RequestFault) {
	s.mu.Lock()
	s.reqFault = f
	s.mu.Unlock()
}

// Close stops hanging requests and shuts the server down.
func (s *Server) Close() {
	s.Hang.Store(false)
	s.Server.Close()
}

// SetFault installs (or, with nil, removes) a per-item fault.
func (s *Server) SetFault(f ItemFault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Docs returns a copy of the documents of one index by id.
func (s *Server) Docs(index string) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for id, d := range s.indices[index] {
		out[id] = d
	}
	return out
}

// Indices lists the index names that hold documents, sorted.
func (s *Server) Indices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.indices {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// IndicesMatching lists the indices matching pattern (comma-separated
// names with * wildcards), sorted.
func (s *Server) IndicesMatching(pattern string) []string {
	var out []string
	for _, name := range s.Indices() {
		if matchIndex(pattern, name) {
			out = append(out, name)
		}
	}
	return out
}

// Count returns the number of documents in indices matching pattern
// (comma-separated names with * wildcards).
func (s *Server) Count(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for name, docs := range s.indices {
		if matchIndex(pattern, name) {
			n += len(docs)
		}
	}
	return n
}

// Template returns an installed index template's body.
func (s *Server) Template(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.templates["_index_template/"+name]
	return t, ok
}

// ILMPolicy returns an installed lifecycle policy's body.
func (s *Server) ILMPolicy(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.templates["_ilm/policy/"+name]
	return t, ok
}

// BulkStats returns how many bulk requests and items were received.
func (s *Server) BulkStats() (requests, items int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bulks, s.items
}

func matchIndex(pattern, name string) bool {
	for _, p := range strings.Split(pattern, ",") {
		if p == "_all" || p == "*" {
			return true
		}
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	for s.Hang.Load() {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
	if code := s.Down.Load(); code != 0 {
		typ := "unavailable"
		if code == 401 || code == 403 {
			typ = "security_exception"
		}
		writeError(w, int(code), typ, "injected outage")
		return
	}
	if limit := s.MaxContentLength.Load(); limit > 0 && strings.HasSuffix(r.URL.Path, "/_bulk") {
		raw, _ := io.ReadAll(r.Body)
		if int64(len(raw)) > limit {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(413)
			io.WriteString(w, "<html><head><title>413 Request Entity Too Large</title></head></html>\n")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
	}
	body, err := ReadBody(r)
	if err != nil {
		writeError(w, 400, "parse_exception", err.Error())
		return
	}
	if s.KeepBodies.Load() {
		s.mu.Lock()
		s.bodies = append(s.bodies, append([]byte(r.Method+" "+r.URL.String()+"\n"), body...))
		s.mu.Unlock()
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	last := parts[len(parts)-1]
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		io.WriteString(w, `{"name":"estest","cluster_name":"logweave-test","version":{"number":"8.19.7","build_flavor":"default","lucene_version":"9.12.2","minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}`)
	case last == "_bulk":
		defIndex := ""
		if len(parts) == 2 {
			defIndex = parts[0]
		}
		s.bulk(w, body, defIndex)
	case len(parts) == 2 && parts[0] == "_index_template":
		s.template(w, r, "_index_template/"+parts[1], body)
	case len(parts) == 3 && parts[0] == "_ilm" && parts[1] == "policy":
		s.template(w, r, "_ilm/policy/"+parts[2], body)
	case last == "_refresh" || last == "_flush":
		io.WriteString(w, `{"_shards":{"total":1,"successful":1,"failed":0}}`)
	case len(parts) == 2 && last == "_count":
		fmt.Fprintf(w, `{"count":%d}`, len(s.search(parts[0], body, -1)))
	case len(parts) == 2 && last == "_delete_by_query":
		hits := s.search(parts[0], body, -1)
		s.mu.Lock()
		for _, h := range hits {
			delete(s.indices[h.index], h.id)
		}
		s.tasks = append(s.tasks, len(hits))
		n := len(s.tasks)
		s.mu.Unlock()
		fmt.Fprintf(w, `{"task":"estest:%d"}`, n)
	case len(parts) == 2 && parts[0] == "_tasks":
		var n int
		fmt.Sscanf(parts[1], "estest:%d", &n)
		s.mu.Lock()
		ok := n >= 1 && n <= len(s.tasks)
		var deleted int
		if ok {
			deleted = s.tasks[n-1]
		}
		s.mu.Unlock()
		if !ok {
			writeError(w, 404, "resource_not_found_exception", "task "+parts[1]+" not found")
			return
		}
		fmt.Fprintf(w, `{"completed":true,"task":{"status":{"total":%d,"deleted":%d,"version_conflicts":0}},"response":{"deleted":%d,"failures":[]}}`, deleted, deleted, deleted)
	case len(parts) == 2 && last == "_search":
		s.writeSearch(w, parts[0], body)
	case len(parts) == 3 && parts[1] == "_doc" && r.Method == http.MethodGet:
		s.mu.Lock()
		doc, ok := s.indices[parts[0]][parts[2]]
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(404)
			fmt.Fprintf(w, `{"_index":%q,"_id":%q,"found":false}`, parts[0], parts[2])
			return
		}
		fmt.Fprintf(w, `{"_index":%q,"_id":%q,"found":true,"_source":%s}`, parts[0], parts[2], doc)
	default:
		writeError(w, 400, "illegal_argument_exception", "estest: unsupported request "+r.Method+" "+r.URL.Path)
	}
}

// ReadBody reads a request body, decompressing gzip or zstd as its
// Content-Encoding says.
func ReadBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		rd = zr
	case "s2":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		return s2.Decode(nil, b)
	case "zstd":
		zr, err := zstd.NewReader(r.Body, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		rd = zr
	}
	return io.ReadAll(rd)
}

// ReadEnvelopes reads what a shipper POSTed (ReadBody), in the binary
// framing or as NDJSON: envelopes, or plain lines taken as envelopes of
// their line. The collector's own handler does the same for real.
func ReadEnvelopes(r *http.Request) ([]pipeline.Envelope, error) {
	body, err := ReadBody(r)
	if err != nil {
		return nil, err
	}
	var out []pipeline.Envelope
	if strings.HasPrefix(r.Header.Get("Content-Type"), pipeline.FramesContentType) {
		fr, err := pipeline.NewFrameReader(body)
		if err != nil {
			return nil, err
		}
		var e pipeline.Envelope
		for fr.Next(&e) {
			out = append(out, e)
		}
		return out, fr.Err()
	}
	for _, line := range bytes.Split(body, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e pipeline.Envelope
		if !pipeline.ParseEnvelope(line, &e) {
			e = pipeline.Envelope{Line: line}
		}
		out = append(out, e)
	}
	return out, nil
}

func writeError(w http.ResponseWriter, status int, typ, reason string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"root_cause":[{"type":%q,"reason":%q}],"type":%q,"reason":%q},"status":%d}`, typ, reason, typ, reason, status)
}

func (s *Server) template(w http.ResponseWriter, r *http.Request, name string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		if !json.Valid(body) {
			writeError(w, 400, "parse_exception", "template body is not JSON")
			return
		}
		s.templates[name] = body
		io.WriteString(w, `{"acknowledged":true}`)
	case http.MethodGet, http.MethodHead:
		t, ok := s.templates[name]
		if !ok {
			writeError(w, 404, "resource_not_found_exception", "index template matching ["+name+"] not found")
			return
		}
		fmt.Fprintf(w, `{"resources":[{"name":%q,"body":%s}]}`, name, t)
	default:
		writeError(w, 405, "method_not_allowed", r.Method)
	}
}

// bulk answers exactly one item per action, in order, as Elasticsearch does.
func (s *Server) bulk(w http.ResponseWriter, body []byte, defIndex string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bulks++
	if s.reqFault != nil {
		if status, typ, reason := s.reqFault(body); status != 0 {
			writeError(w, status, typ, reason)
			return
		}
	}
	// Elasticsearch validates every action before it indexes any: one _id
	// over 512 bytes fails the whole request.
	ids := bufio.NewScanner(bytes.NewReader(body))
	ids.Buffer(make([]byte, 1<<20), 100<<20)
	for ids.Scan() {
		id := gjson.GetBytes(ids.Bytes(), "*._id").String()
		if len(id) > 512 {
			writeError(w, 400, "action_request_validation_exception", fmt.Sprintf("Validation Failed: 1: id [%.40s...] is too long, must be no longer than 512 bytes but was: %d;", id, len(id)))
			return
		}
		ids.Scan() // the document
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 100<<20)
	var items []string
	hasErrors := false
	omit := s.OmitItemStatus.Load()
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		action := gjson.ParseBytes(line)
		var op string
		var meta gjson.Result
		action.ForEach(func(k, v gjson.Result) bool { op, meta = k.String(), v; return false })
		index := meta.Get("_index").String()
		if index == "" {
			index = defIndex
		}
		id := meta.Get("_id").String()
		var doc []byte
		if op != "delete" {
			if !sc.Scan() {
				writeError(w, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
				return
			}
			doc = bytes.Clone(bytes.TrimSpace(sc.Bytes()))
		}
		s.items++
		status, errType, reason := 0, "", ""
		switch {
		case op != "index" && op != "create" && op != "delete":
			status, errType, reason = 400, "illegal_argument_exception", "estest: unsupported bulk op "+op
		case index == "":
			status, errType, reason = 400, "action_request_validation_exception", "index is missing"
		case op != "delete" && !isObject(doc):
			status, errType, reason = 400, "mapper_parsing_exception", "failed to parse: document is not a JSON object"
		case op != "delete":
			if k, dup := duplicateKey(doc); dup {
				status, errType, reason = 400, "mapper_parsing_exception", "failed to parse: Duplicate field '"+k+"'"
			}
		}
		if status == 0 && s.fault != nil {
			status, errType, reason = s.fault(index, id, doc)
		}
		if status != 0 && status >= 300 {
			hasErrors = true
			items = append(items, fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"status":%d,"error":{"type":%q,"reason":%q}}}`, op, index, id, status, errType, reason))
			continue
		}
		docs := s.indices[index]
		if docs == nil {
			docs = map[string][]byte{}
			s.indices[index] = docs
		}
		if id == "" {
			id = fmt.Sprintf("auto-%d", s.items)
		}
		_, existed := docs[id]
		result, code := "created", 201
		switch {
		case op == "delete":
			delete(docs, id)
			result, code = "deleted", 200
			if !existed {
				result, code = "not_found", 404
			}
		case op == "create" && existed:
			hasErrors = true
			items = append(items, fmt.Sprintf(`{"create":{"_index":%q,"_id":%q,"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[%s]: version conflict, document already exists"}}}`, index, id, id))
			continue
		case meta.Get("if_seq_no").Exists() && (!existed || meta.Get("if_seq_no").Int() != s.seqNos[index+"\x00"+id] || meta.Get("if_primary_term").Int() != 1):
			// Optimistic concurrency: the document changed (or is gone)
			// since it was read at that sequence number.
			hasErrors = true
			items = append(items, fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[%s]: version conflict, required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [1]"}}}`,
				op, index, id, id, meta.Get("if_seq_no").Int(), meta.Get("if_primary_term").Int(), s.seqNos[index+"\x00"+id]))
			continue
		default:
			if existed {
				result, code = "updated", 200
			}
			docs[id] = doc
		}
		s.seq++
		if op == "delete" {
			delete(s.seqNos, index+"\x00"+id)
		} else {
			s.seqNos[index+"\x00"+id] = s.seq
		}
		if omit {
			items = append(items, fmt.Sprintf(`{%q:{"_index":%q,"_id":%q}}`, op, index, id))
			continue
		}
		items = append(items, fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"_version":1,"_seq_no":%d,"_primary_term":1,"result":%q,"status":%d}}`, op, index, id, s.seq, result, code))
	}
	fmt.Fprintf(w, `{"took":1,"errors":%t,"items":[%s]}`, hasErrors, strings.Join(items, ","))
}

func isObject(b []byte) bool {
	return len(b) > 0 && b[0] == '{' && gjson.ValidBytes(b)
}

// duplicateKey finds a key that appears twice in one object at any depth;
// Elasticsearch rejects such documents.
func duplicateKey(doc []byte) (string, bool) {
	var dup string
	var walk func(r gjson.Result) bool
	walk = func(r gjson.Result) bool {
		seen := map[string]bool{}
		ok := true
		r.ForEach(func(k, v gjson.Result) bool {
			if r.IsObject() {
				if seen[k.Str] {
					dup, ok = k.Str, false
					return false
				}
				seen[k.Str] = true
			}
			if v.IsObject() || v.IsArray() {
				ok = walk(v)
			}
			return ok
		})
		return ok
	}
	return dup, !walk(gjson.ParseBytes(doc))
}

// search supports match_all, term/match on one field and terms on one field
// (dotted path, exact string comparison), with size and a sort on one field.
func (s *Server) search(pattern string, body []byte, size int) []hit {
	q := gjson.GetBytes(body, "query")
	var field, value string
	var values map[string]bool // a terms query
	q.Get("terms").ForEach(func(k, v gjson.Result) bool {
		field, values = k.String(), map[string]bool{}
		for _, e := range v.Array() {
			values[e.String()] = true
		}
		return false
	})
	for _, kind := range []string{"term", "match", "match_phrase"} {
		if t := q.Get(kind); t.Exists() {
			t.ForEach(func(k, v gjson.Result) bool {
				field = k.String()
				value = v.String()
				if v.IsObject() {
					value = v.Get("value").String()
					if value == "" {
						value = v.Get("query").String()
					}
				}
				return false
			})
		}
	}
	s.mu.Lock()
	var hits []hit
	for name, docs := range s.indices {
		if !matchIndex(pattern, name) {
			continue
		}
		for id, d := range docs {
			if field != "" {
				v := gjson.GetBytes(d, field)
				if !v.Exists() {
					v = gjson.GetBytes(d, strings.ReplaceAll(field, ".", `\.`))
				}
				if values != nil {
					if !matchAny(v, values) {
						continue
					}
				} else if !matchValue(v, value) {
					continue
				}
			}
			hits = append(hits, hit{index: name, id: id, source: d, seqNo: s.seqNos[name+"\x00"+id]})
		}
	}
	s.mu.Unlock()
	sortField, desc := "", false
	if so := gjson.GetBytes(body, "sort.0"); so.Exists() {
		if so.Type == gjson.String {
			sortField = so.Str
		} else {
			so.ForEach(func(k, v gjson.Result) bool {
				sortField = k.String()
				desc = v.String() == "desc" || v.Get("order").String() == "desc"
				return false
			})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if sortField != "" {
			a := gjson.GetBytes(hits[i].source, sortField).String()
			b := gjson.GetBytes(hits[j].source, sortField).String()
			if a != b {
				return (a < b) != desc
			}
		}
		return hits[i].index+hits[i].id < hits[j].index+hits[j].id
	})
	if size >= 0 && len(hits) > size {
		hits = hits[:size]
	}
	return hits
}

// matchAny: a terms query, on a value or any element of an array.
func matchAny(v gjson.Result, values map[string]bool) bool {
	if v.IsArray() {
		for _, e := range v.Array() {
			if values[e.String()] {
				return true
			}
		}
		return false
	}
	return v.Exists() && values[v.String()]
}

func matchValue(v gjson.Result, want string) bool {
	if v.IsArray() {
		for _, e := range v.Array() {
			if e.String() == want {
				return true
			}
		}
		return false
	}
	return v.Exists() && v.String() == want
}

type hit struct {
	index, id string
	source    []byte
	seqNo     int64
}

func (s *Server) writeSearch(w http.ResponseWriter, pattern string, body []byte) {
	size := 10
	if sz := gjson.GetBytes(body, "size"); sz.Exists() {
		size = int(sz.Int())
	}
	all := s.search(pattern, body, -1)
	hits := all
	if len(hits) > size {
		hits = hits[:size]
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"took":1,"timed_out":false,"hits":{"total":{"value":%d,"relation":"eq"},"hits":[`, len(all))
	for i, h := range hits {
		if i > 0 {
			b.WriteByte(',')
		}
		if gjson.GetBytes(body, "seq_no_primary_term").Bool() {
			fmt.Fprintf(&b, `{"_index":%q,"_id":%q,"_score":1,"_seq_no":%d,"_primary_term":1,"_source":%s}`, h.index, h.id, h.seqNo, h.source)
			continue
		}
		fmt.Fprintf(&b, `{"_index":%q,"_id":%q,"_score":1,"_source":%s}`, h.index, h.id, h.source)
	}
	b.WriteString(`]}}`)
	io.WriteString(w, b.String())
}
