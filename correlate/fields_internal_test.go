package correlate

import (
	"testing"

	"github.com/tidwall/gjson"
)

// readFields finds what gjson.GetManyBytes finds, in one pass.
func TestReadFieldsAgreesWithGetMany(t *testing.T) {
	docs := []string{
		`{"@timestamp":"2026-11-26T10:00:00.000Z","message":"m","trace":{"id":"abc"},"service":{"name":"orders"},"log":{"level":"error"},"event":{"id":"e1","dataset":"nginx.access","duration":1500000},"http":{"request":{"method":"POST","id":"abc"},"response":{"status_code":502}},"url":{"path":"/x"},"source":{"ip":"10.0.0.1"}}`,
		`{"trace":{"id":"first"},"trace":{"id":"second"},"@timestamp":"t"}`,
		`{"trace":{"x":1,"id":"late"},"log":"text","log_value":{"level":"x"},"service":"plain"}`,
		`{"http":{"response":{"status_code":"200"}},"event":{"id":12}}`,
		`{"a":[1,2,{"trace":{"id":"nested"}}],"trace":{"id":"top"}}`,
		`{}`,
		`{"trace":{"id":"x\"y"},"service":{"name":"a\u00e9"}}`,
	}
	for _, d := range docs {
		got := readFields([]byte(d))
		want := gjson.GetManyBytes([]byte(d), docFields[:]...)
		for i := range got {
			if got[i].Raw != want[i].Raw || got[i].String() != want[i].String() {
				t.Errorf("%s: %s = %q, GetManyBytes %q", d, docFields[i], got[i].Raw, want[i].Raw)
			}
		}
	}
}
