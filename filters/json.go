package filters

import (
	"bytes"

	"github.com/logweave/logweave/pipeline"
)

// TagJSONParseFailure is the tag Logstash's json filter adds to lines it
// could not parse; logweave uses the same so existing dashboards keep working.
const TagJSONParseFailure = "_jsonparsefailure"

// JSON parses the event's raw line as a JSON object. A line that is not a
// JSON object keeps its text in message and is tagged _jsonparsefailure;
// nothing is dropped.
type JSON struct{}

// Apply implements Filter.
func (JSON) Apply(e *pipeline.Event) {
	line := bytes.TrimSpace(e.Line)
	if len(line) > 0 && line[0] == '{' && e.SetObject(line) {
		return
	}
	// In the event's arena: a string and a slice per line was this
	// filter's cost for every text line.
	e.Set("message", e.JSONString(b2s(bytes.TrimRight(e.Line, "\r\n"))))
	e.AddTag(TagJSONParseFailure)
}
