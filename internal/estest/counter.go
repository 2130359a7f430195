package estest

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
)

// Counter is a minimal Elasticsearch for benchmarks: it answers every bulk
// action with a created item (one per action, in order) and only counts
// them, so what is measured is the client side.
type Counter struct {
	*httptest.Server
	Items atomic.Int64
}

// NewCounter starts a counting server.
func NewCounter() *Counter {
	c := &Counter{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		body, err := ReadBody(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if r.URL.Path != "/_bulk" {
			io.WriteString(w, `{"acknowledged":true}`)
			return
		}
		actions := bytes.Count(body, []byte{'\n'}) / 2
		c.Items.Add(int64(actions))
		bw := bufio.NewWriter(w)
		bw.WriteString(`{"took":1,"errors":false,"items":[`)
		for i := 0; i < actions; i++ {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(`{"index":{"_index":"x","_id":"x","_version":1,"result":"created","status":201}}`)
		}
		bw.WriteString(`]}`)
		bw.Flush()
	}))
	return c
}
