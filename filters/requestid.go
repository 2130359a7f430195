package filters

import (
	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

// DefaultRequestIDFields are the fields searched for the X-Request-ID, in order.
var DefaultRequestIDFields = []string{
	"http.request.id", "request_id", "x_request_id", "requestId", "req_id",
	"headers.x-request-id",
}

// RequestID finds the request id the gateway stamped (X-Request-ID) in the
// first of Fields that holds a non-empty string or number, and writes it to
// http.request.id and trace.id; it also becomes the event's partitioning key.
type RequestID struct {
	Fields []string
}

// Apply implements Filter.
func (f RequestID) Apply(e *pipeline.Event) {
	if e.Doc == nil {
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
		raw := e.JSONString(id)
		e.Set("http.request.id", raw)
		e.Set("trace.id", raw)
		e.Key = id
		return
	}
}
