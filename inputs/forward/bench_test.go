package forward

import "testing"

// BenchmarkMap maps a record as Docker's fluentd driver sends an
// application's JSON line.
func BenchmarkMap(b *testing.B) {
	e := Entry{Time: t0, Record: []byte(`{"container_id":"3f1c0d5e8a2b","container_name":"/orders-1","source":"stdout","log":"{\"time\":\"2026-12-06T10:00:00.123Z\",\"level\":\"info\",\"service\":\"orders\",\"msg\":\"handled step 3 of /api/checkout\",\"request_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"http\":{\"method\":\"POST\",\"status\":200},\"duration_ms\":12.5}"}`)}
	b.ReportAllocs()
	for b.Loop() {
		Map("app", e)
	}
}
