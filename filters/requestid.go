package filters

import (
	"strings"

	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

// DefaultRequestIDFields are the fields searched for the X-Request-ID, in order.
var DefaultRequestIDFields = []string{
	"http.request.id", "request_id", "x_request_id", "requestId", "req_id",
	"headers.x-request-id", "traceparent", "headers.traceparent",
}

// RequestID finds the request id the gateway stamped (X-Request-ID) in the
// first of Fields that holds a non-empty string or number, and writes it to
// http.request.id and trace.id; it also becomes the event's partitioning key.
type RequestID struct {
	Fields []string
}

// Apply implements Filter.
func (f RequestID) Apply(e *pipeline.Event) {
	if e.Doc == nil && !e.Edited() {
		return
	}
	fields := f.Fields
	if fields == nil {
		fields = DefaultRequestIDFields
	}
	for _, name := range fields {
		r := e.Get(name)
		if (r.Type != gjson.String && r.Type != gjson.Number) || r.Raw == `""` {
			continue
		}
		id := r.String()
		if strings.HasSuffix(name, "traceparent") {
			// W3C trace context: version-traceid-parentid-flags
			if id = traceParentID(id); id == "" {
				continue
			}
		}
		raw := e.JSONString(id)
		e.Set("http.request.id", raw)
		e.Set("trace.id", raw)
		e.Key = strings.Clone(id) // id aliases the line, whose storage the next event reuses
		return
	}
}

// traceParentID returns the trace id of a W3C traceparent header value
// ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), or "".
func traceParentID(v string) string {
	parts := strings.Split(strings.TrimSpace(v), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || !hex(parts[1]) || parts[1] == strings.Repeat("0", 32) {
		return ""
	}
	return parts[1]
}
