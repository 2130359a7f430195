// Package traceview shows one request's trace in the terminal: its trace
// document and its events, read from Elasticsearch or from the collector's
// file output, drawn as a waterfall (`collector trace`).
package traceview

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// View is a trace and its events (documents as indexed).
type View struct {
	Trace  []byte   // the trace document; nil when none was written yet
	Events [][]byte // ordered by @timestamp
}

// ErrNotFound says no event carries the request id.
var ErrNotFound = errors.New("no event with that request id")

// Searcher runs a _search on an index pattern and returns the response.
type Searcher interface {
	Search(ctx context.Context, index string, body []byte) ([]byte, error)
}

// FromElasticsearch reads the trace document (by its id) and the events
// (by trace.id) from the logs and traces index patterns' prefixes.
func FromElasticsearch(ctx context.Context, s Searcher, logsIndex, tracesIndex, id string) (*View, error) {
	q := fmt.Sprintf(`{"size":10000,"query":{"term":{"trace.id":%q}},"sort":[{"@timestamp":"asc"}]}`, id)
	res, err := s.Search(ctx, pipeline.PatternPrefix(logsIndex)+"*", []byte(q))
	if err != nil {
		return nil, err
	}
	v := &View{}
	for _, h := range gjson.GetBytes(res, "hits.hits").Array() {
		v.Events = append(v.Events, []byte(h.Get("_source").Raw))
	}
	if tracesIndex != "" {
		res, err := s.Search(ctx, pipeline.PatternPrefix(tracesIndex)+"*", []byte(fmt.Sprintf(`{"size":1,"query":{"term":{"trace.id":%q}}}`, id)))
		if err != nil {
			return nil, err
		}
		if h := gjson.GetBytes(res, "hits.hits.0._source"); h.Exists() {
			v.Trace = []byte(h.Raw)
		}
	}
	return v.done()
}

// outputDir says plainly when the file output's directory is not there
// (a relative file_output.path read from another working directory),
// instead of "no event" or an empty list.
func outputDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil && fi.IsDir() {
		return nil
	}
	abs, _ := filepath.Abs(dir)
	return fmt.Errorf("file_output.path %q (%s) is not a directory the collector wrote: is the path relative to another working directory?", dir, abs)
}

// FromFiles reads the collector's file output directory: events from the
// logs index files, the trace from the traces index files (its last
// version: a trace reopened by a late event is appended again).
func FromFiles(dir, logsIndex, tracesIndex, id string) (*View, error) {
	if err := outputDir(dir); err != nil {
		return nil, err
	}
	v := &View{}
	needle := []byte(id)
	scan := func(pattern string, each func(doc []byte)) error {
		files, _ := filepath.Glob(filepath.Join(dir, pipeline.PatternPrefix(pattern)+"*.ndjson"))
		sort.Strings(files)
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			for sc.Scan() {
				if line := sc.Bytes(); bytes.Contains(line, needle) && gjson.GetBytes(line, "trace.id").String() == id {
					each(bytes.Clone(line))
				}
			}
			f.Close()
			if err := sc.Err(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	}
	seen := map[string]bool{}
	if err := scan(logsIndex, func(d []byte) {
		// A replayed batch appends a line again: keep each event once.
		if eid := gjson.GetBytes(d, "event.id").String(); eid == "" || !seen[eid] {
			seen[eid] = true
			v.Events = append(v.Events, d)
		}
	}); err != nil {
		return nil, err
	}
	if tracesIndex != "" {
		if err := scan(tracesIndex, func(d []byte) { v.Trace = d }); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(v.Events, func(i, j int) bool { return ts(v.Events[i]).Before(ts(v.Events[j])) })
	return v.done()
}

func (v *View) done() (*View, error) {
	if len(v.Events) == 0 && v.Trace == nil {
		return nil, ErrNotFound
	}
	return v, nil
}

func ts(doc []byte) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, gjson.GetBytes(doc, "@timestamp").String())
	return t
}

// WriteJSON writes {"trace": ..., "events": [...]}.
func (v *View) WriteJSON(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString(`{"trace":`)
	if v.Trace != nil {
		b.Write(v.Trace)
	} else {
		b.WriteString("null")
	}
	b.WriteString(`,"events":[`)
	for i, e := range v.Events {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e)
	}
	b.WriteString("]}\n")
	_, err := w.Write(b.Bytes())
	return err
}

const barWidth = 40

// Render writes the waterfall: a header with the entry request and totals,
// one line per event with its offset from the start, service, level and
// message, then the spans as bars on one time scale.
func (v *View) Render(w io.Writer) error {
	var b strings.Builder
	tr := gjson.ParseBytes(v.Trace)
	id := tr.Get("trace.id").String()
	if id == "" && len(v.Events) > 0 {
		id = gjson.GetBytes(v.Events[0], "trace.id").String()
	}
	start, end := ts(v.Trace), time.Time{}
	if v.Trace != nil {
		end, _ = time.Parse(time.RFC3339Nano, tr.Get("end").String())
	}
	for _, e := range v.Events {
		t := ts(e)
		if start.IsZero() || t.Before(start) {
			start = t
		}
		if t.After(end) {
			end = t
		}
	}
	fmt.Fprintf(&b, "trace %s", id)
	if m := tr.Get("http.request.method"); m.Exists() {
		fmt.Fprintf(&b, "  %s %s → %d", m.String(), tr.Get("url.path").String(), tr.Get("http.response.status_code").Int())
	}
	fmt.Fprintf(&b, "\n  %s  %s  %s", start.UTC().Format("2006-01-02 15:04:05.000"), ms(end.Sub(start)), plural(int64(len(v.Events)), "event"))
	if v.Trace != nil {
		fmt.Fprintf(&b, "  %d services", len(tr.Get("services").Array()))
		if tr.Get("error").Bool() {
			b.WriteString("  ERROR")
		}
	} else {
		b.WriteString("  (no trace document yet: it is written once the request is quiet)")
	}
	b.WriteString("\n\n")
	svcWidth := len("service")
	for _, e := range v.Events {
		svcWidth = max(svcWidth, len(service(e)))
	}
	fmt.Fprintf(&b, "  %9s  %-*s  %-7s  %s\n", "offset", svcWidth, "service", "level", "message")
	for _, e := range v.Events {
		msg := gjson.GetBytes(e, "message").String()
		if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
			msg = msg[:i] + " …"
		}
		if len(msg) > 100 {
			msg = msg[:100] + "…"
		}
		fmt.Fprintf(&b, "  %9s  %-*s  %-7s  %s\n", "+"+ms(ts(e).Sub(start)), svcWidth, service(e), gjson.GetBytes(e, "log.level").String(), msg)
	}
	if spans := tr.Get("spans").Array(); len(spans) > 0 {
		b.WriteString("\n  spans\n")
		total := end.Sub(start)
		for _, s := range spans {
			s0, _ := time.Parse(time.RFC3339Nano, s.Get("start").String())
			s1, _ := time.Parse(time.RFC3339Nano, s.Get("end").String())
			from := min(scale(s0.Sub(start), total), barWidth-1)
			to := max(scale(s1.Sub(start), total), from+1)
			bar := strings.Repeat(" ", from) + strings.Repeat("█", to-from) + strings.Repeat(" ", barWidth-to)
			note := plural(s.Get("event_count").Int(), "event")
			if n := s.Get("error_count").Int(); n > 0 {
				note += ", " + plural(n, "error")
			}
			fmt.Fprintf(&b, "  %-*s |%s| %s–%s  %s\n", svcWidth, s.Get("service").String(), bar, ms(s0.Sub(start)), ms(s1.Sub(start)), note)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func service(e []byte) string {
	if s := gjson.GetBytes(e, "service.name").String(); s != "" {
		return s
	}
	return "-"
}

// scale places d on a bar of barWidth cells for total.
func scale(d, total time.Duration) int {
	if total <= 0 {
		return 0
	}
	return max(0, min(barWidth, int((int64(d)*barWidth+int64(total)/2)/int64(total))))
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}

// ListOptions select traces for `collector traces`.
type ListOptions struct {
	Errors  bool          // only traces with an error
	Since   time.Duration // only traces that started this long ago or later (0: all)
	Slowest int           // the N slowest instead of the N latest
	Limit   int           // how many (default 20)
	Now     time.Time
}

// select filters and orders trace documents (the last version of each id).
func (o ListOptions) pick(docs [][]byte) [][]byte {
	latest := map[string][]byte{}
	var order []string
	for _, d := range docs {
		id := gjson.GetBytes(d, "trace.id").String()
		if _, ok := latest[id]; !ok {
			order = append(order, id)
		}
		latest[id] = d
	}
	var out [][]byte
	for _, id := range order {
		d := latest[id]
		if o.Errors && !gjson.GetBytes(d, "error").Bool() {
			continue
		}
		if o.Since > 0 && ts(d).Before(o.Now.Add(-o.Since)) {
			continue
		}
		out = append(out, d)
	}
	if o.Slowest > 0 {
		sort.SliceStable(out, func(i, j int) bool {
			return gjson.GetBytes(out[i], "duration_ms").Float() > gjson.GetBytes(out[j], "duration_ms").Float()
		})
	} else {
		sort.SliceStable(out, func(i, j int) bool { return ts(out[i]).After(ts(out[j])) })
	}
	limit := o.Limit
	if o.Slowest > 0 {
		limit = o.Slowest
	}
	if limit <= 0 {
		limit = 20
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// ListFromFiles reads the traces from the file output.
func ListFromFiles(dir, tracesIndex string, o ListOptions) ([][]byte, error) {
	if err := outputDir(dir); err != nil {
		return nil, err
	}
	files, _ := filepath.Glob(filepath.Join(dir, pipeline.PatternPrefix(tracesIndex)+"*.ndjson"))
	sort.Strings(files)
	var docs [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(l) > 0 {
				docs = append(docs, l)
			}
		}
	}
	return o.pick(docs), nil
}

// ListFromElasticsearch asks for the traces (filtered and sorted there)
// and applies the same selection.
func ListFromElasticsearch(ctx context.Context, s Searcher, tracesIndex string, o ListOptions) ([][]byte, error) {
	var filters []string
	if o.Errors {
		filters = append(filters, `{"term":{"error":true}}`)
	}
	if o.Since > 0 {
		filters = append(filters, fmt.Sprintf(`{"range":{"@timestamp":{"gte":%q}}}`, o.Now.Add(-o.Since).UTC().Format(time.RFC3339)))
	}
	sortBy := `{"@timestamp":"desc"}`
	if o.Slowest > 0 {
		sortBy = `{"duration_ms":"desc"}`
	}
	q := fmt.Sprintf(`{"size":1000,"query":{"bool":{"filter":[%s]}},"sort":[%s]}`, strings.Join(filters, ","), sortBy)
	res, err := s.Search(ctx, pipeline.PatternPrefix(tracesIndex)+"*", []byte(q))
	if err != nil {
		return nil, err
	}
	var docs [][]byte
	for _, h := range gjson.GetBytes(res, "hits.hits").Array() {
		docs = append(docs, []byte(h.Get("_source").Raw))
	}
	return o.pick(docs), nil
}

// RenderList writes one line per trace.
func RenderList(w io.Writer, docs [][]byte) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-23s  %-32s  %9s  %6s  %-5s  %-6s  %s\n", "start", "trace.id", "duration", "events", "error", "status", "request · services")
	for _, d := range docs {
		t := gjson.ParseBytes(d)
		status := ""
		if s := t.Get("http.response.status_code"); s.Exists() {
			status = s.String()
		}
		errs := ""
		if t.Get("error").Bool() {
			errs = "yes"
		}
		req := strings.TrimSpace(t.Get("http.request.method").String() + " " + t.Get("url.path").String())
		var svcs []string
		for _, s := range t.Get("services").Array() {
			svcs = append(svcs, s.String())
		}
		fmt.Fprintf(&b, "%-23s  %-32s  %9s  %6d  %-5s  %-6s  %s · %s\n", ts(d).UTC().Format("2006-01-02 15:04:05.000"), t.Get("trace.id").String(),
			fmt.Sprintf("%.1fms", t.Get("duration_ms").Float()), t.Get("event_count").Int(), errs, status, req, strings.Join(svcs, ","))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
