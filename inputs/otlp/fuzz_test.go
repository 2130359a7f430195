package otlp

import (
	"encoding/json"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// Whatever an OTLP/HTTP body holds (JSON or protobuf), decoding it either
// fails or yields records that map, without a panic, to one valid JSON
// object each.
func FuzzExportRequest(f *testing.F) {
	j, _ := sample().MarshalJSON()
	p, _ := sample().MarshalProto()
	f.Add(j, true)
	f.Add(p, false)
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"kvlistValue":{"values":[{"key":"a.b","value":{"arrayValue":{"values":[{"doubleValue":"NaN"}]}}}]}},"traceId":"zz","attributes":[{"key":"","value":{"bytesValue":"AAE="}}]}]}]}]}`), true)
	f.Add([]byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"intValue":"7"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"18446744073709551615","severityNumber":99,"body":{"stringValue":"{\"msg\":1}"}}]}]}]}`), true)
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		req := plogotlp.NewExportRequest()
		var err error
		if isJSON {
			err = req.UnmarshalJSON(data)
		} else {
			err = req.UnmarshalProto(data)
		}
		if err != nil {
			return
		}
		for _, r := range Map(req.Logs()) {
			var v map[string]any
			if err := json.Unmarshal(r.Line, &v); err != nil {
				t.Fatalf("record mapped to invalid JSON: %v\n%s", err, r.Line)
			}
		}
	})
}
