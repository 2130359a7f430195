package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/internal/kafkatest"
	"github.com/logweave/logweave/outputs/kafka"
	"github.com/logweave/logweave/pipeline"
)

type kafkaEnv struct {
	k   *kafkatest.Cluster
	es  *estest.Server
	cfg func(t testing.TB) *collector.Config
}

func newKafkaEnv(t testing.TB) *kafkaEnv {
	env := &kafkaEnv{k: kafkatest.Start(t, 6), es: estest.New()}
	t.Cleanup(env.es.Close)
	env.cfg = func(t testing.TB) *collector.Config {
		cfg := collector.DefaultConfig()
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.Buffer.Path = filepath.Join(t.TempDir(), "unused")
		cfg.Kafka.Brokers = env.k.Brokers
		cfg.Kafka.Topic = env.k.Topic
		cfg.Kafka.Group = env.k.Topic + "-indexer"
		cfg.Kafka.Partitions = env.k.Partitions
		cfg.Elasticsearch.URLs = []string{env.es.URL}
		cfg.Elasticsearch.RetryInitial = 10 * time.Millisecond
		cfg.Elasticsearch.RetryMax = 50 * time.Millisecond
		cfg.Elasticsearch.BreakerCooldown = time.Second
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	return env
}

func (env *kafkaEnv) startIndexer(t testing.TB, cfg *collector.Config) *collector.Collector {
	t.Helper()
	c, err := collector.NewRole(cfg, collector.RoleIndex, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c.DrainTimeout = 5 * time.Second
	c.Start()
	return c
}

// produce writes n events (seq 0..n-1, request ids shared by 5) straight
// to the topic, as the ingest role would.
func (env *kafkaEnv) produce(t testing.TB, from, n int) {
	cfg := env.cfg(t)
	p, err := kafka.NewProducer(cfg.Kafka)
	if err != nil {
		t.Error(err)
		return
	}
	defer p.Close()
	idx, _ := pipeline.ParseIndexPattern(cfg.Elasticsearch.Index)
	proc := filters.NewProcessor(idx, nil)
	var ev pipeline.Event
	batch := make([]pipeline.Record, 0, 2000)
	for i := from; i < from+n; i++ {
		e := pipeline.Envelope{ID: fmt.Sprintf("ev-%d", i), ReadAt: time.Now(), Host: "node-1",
			Line: []byte(fmt.Sprintf(`{"ts":%d,"level":"info","msg":"step","seq":%d,"request_id":"req-%d"}`, time.Now().UnixMilli(), i, i/5))}
		rec := proc.Process(&e, &ev, nil)
		batch = append(batch, rec)
		if len(batch) == cap(batch) || i == from+n-1 {
			if err := p.Write(context.Background(), batch); err != nil {
				t.Error(err)
				return
			}
			batch = batch[:0]
		}
	}
}

// check asserts each seq in [0,n) is indexed exactly once, except those in
// dead (expected in the dead-letter index instead).
func (env *kafkaEnv) check(t testing.TB, n int, dead func(seq int64) bool) {
	t.Helper()
	seen := make([]bool, n)
	deadSeen := 0
	for _, idx := range env.es.IndicesMatching("logs-*,logweave-deadletter-*") {
		for id, doc := range env.es.Docs(idx) {
			if strings.HasPrefix(idx, "logweave-deadletter-") {
				orig := gjson.GetBytes(doc, "event.original").String()
				seq := gjson.Get(orig, "seq").Int()
				if !dead(seq) || gjson.GetBytes(doc, "error.type").String() == "" || gjson.GetBytes(doc, "error.message").String() == "" {
					t.Fatalf("unexpected dead letter %s: %s", id, doc)
				}
				deadSeen++
				continue
			}
			seq := gjson.GetBytes(doc, "seq").Int()
			if dead(seq) {
				t.Fatalf("seq %d should have been dead-lettered", seq)
			}
			if seen[seq] {
				t.Fatalf("seq %d indexed twice", seq)
			}
			seen[seq] = true
		}
	}
	missing := 0
	for seq, ok := range seen {
		if !ok && !dead(int64(seq)) {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d events missing", missing)
	}
	wantDead := 0
	for i := 0; i < n; i++ {
		if dead(int64(i)) {
			wantDead++
		}
	}
	if deadSeen != wantDead {
		t.Fatalf("%d dead letters, want %d", deadSeen, wantDead)
	}
}

func (env *kafkaEnv) waitIndexed(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	// Events only: trace documents (traces-*) are not events.
	eventually(t, timeout, fmt.Sprintf("%d documents", n), func() bool { return env.es.Count("logs-*,logweave-deadletter-*") >= n })
	time.Sleep(200 * time.Millisecond)
}

func noneDead(int64) bool { return false }

// (a) 30% of bulk items answered 429 at random: every event indexed once.
func TestKafkaRandom429sIndexEverythingOnce(t *testing.T) {
	env := newKafkaEnv(t)
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(7, 7))
	env.es.SetFault(func(index, id string, doc []byte) (int, string, string) {
		mu.Lock()
		defer mu.Unlock()
		if r.IntN(100) < 30 {
			return 429, "es_rejected_execution_exception", "rejected execution of coordinating operation [injected]"
		}
		return 0, "", ""
	})
	c := env.startIndexer(t, env.cfg(t))
	defer stopCollector(t, c)
	env.produce(t, 0, kafkaEvents)
	env.waitIndexed(t, kafkaEvents, 3*time.Minute)
	env.check(t, kafkaEvents, noneDead)
	if _, items := env.es.BulkStats(); items < kafkaEvents*13/10 {
		t.Fatalf("only %d bulk items for %d events with 30%% 429s: retries missing?", items, kafkaEvents)
	}
	eventually(t, 30*time.Second, "offsets committed to the end", func() bool {
		committed, end := env.k.Committed(t, env.cfg(t).Kafka.Group)
		return committed == end && end == kafkaEvents
	})
}

// (b) a mapping conflict on 1%: those dead-lettered with reasons, the rest
// indexed, offsets committed.
func TestKafkaMappingConflictsGoToDeadLetterIndex(t *testing.T) {
	env := newKafkaEnv(t)
	env.es.SetFault(func(index, id string, doc []byte) (int, string, string) {
		if strings.HasPrefix(index, "logs-") && gjson.GetBytes(doc, "seq").Int()%100 == 0 {
			return 400, "mapper_parsing_exception", "failed to parse field [seq] of type [date] [injected]"
		}
		return 0, "", ""
	})
	c := env.startIndexer(t, env.cfg(t))
	defer stopCollector(t, c)
	env.produce(t, 0, kafkaEvents)
	env.waitIndexed(t, kafkaEvents, 3*time.Minute)
	dead := func(seq int64) bool { return seq%100 == 0 }
	env.check(t, kafkaEvents, dead)
	eventually(t, 30*time.Second, "offsets committed to the end", func() bool {
		committed, end := env.k.Committed(t, env.cfg(t).Kafka.Group)
		return committed == end
	})
}

// (c) Elasticsearch unavailable for 10 s mid-stream: the breaker opens, no
// offset is committed past what was indexed, the backlog drains after
// recovery, nothing lost, no duplicates.
func TestKafkaOutageOpensBreakerAndCommitsNothingUnindexed(t *testing.T) {
	env := newKafkaEnv(t)
	c := env.startIndexer(t, env.cfg(t))
	defer stopCollector(t, c)
	group := env.cfg(t).Kafka.Group
	env.produce(t, 0, kafkaEvents/2)
	eventually(t, time.Minute, "first events indexed", func() bool { return env.es.Count("logs-*") > kafkaEvents/10 })

	env.es.Down.Store(503)
	outageEnd := time.Now().Add(10 * time.Second)
	produced := make(chan struct{})
	go func() { // the stream goes on
		defer close(produced)
		env.produce(t, kafkaEvents/2, kafkaEvents/2)
	}()
	sawOpen := false
	for time.Now().Before(outageEnd) {
		committed, _ := env.k.Committed(t, group)
		if indexed := int64(env.es.Count("logs-*")); committed > indexed {
			t.Fatalf("committed %d offsets but only %d events are indexed", committed, indexed)
		}
		resp, err := http.Get("http://" + c.Addr() + "/readyz")
		if err == nil {
			if resp.StatusCode == http.StatusServiceUnavailable {
				sawOpen = true
			}
			resp.Body.Close()
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !sawOpen {
		t.Fatal("the circuit breaker never opened (/readyz stayed ready) during a 10 s outage")
	}
	env.es.Down.Store(0)
	<-produced
	env.waitIndexed(t, kafkaEvents, 3*time.Minute)
	env.check(t, kafkaEvents, noneDead)
	resp, err := http.Get("http://" + c.Addr() + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz after recovery: %v %v", resp, err)
	}
	resp.Body.Close()
}

// (e) two indexers in one consumer group share the partitions; one stops
// mid-stream (a rebalance) and nothing is lost.
func TestKafkaTwoIndexersShareAndRebalance(t *testing.T) {
	env := newKafkaEnv(t)
	a := env.startIndexer(t, env.cfg(t))
	b := env.startIndexer(t, env.cfg(t))
	aStopped := false
	defer func() {
		if !aStopped {
			stopCollector(t, a)
		}
	}()
	// The stream arrives over a few seconds, so the group has settled
	// (both members own partitions) while it still flows.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		const chunks = 20
		for i := 0; i < chunks; i++ {
			env.produce(t, i*kafkaEvents/chunks, kafkaEvents/chunks)
			time.Sleep(250 * time.Millisecond)
		}
	}()
	eventually(t, time.Minute, "both indexers working", func() bool { return a.Indexed() > 0 && b.Indexed() > 0 })
	stopCollector(t, b) // leaves the group mid-stream: its partitions move to a
	<-produced
	env.waitIndexed(t, kafkaEvents, 3*time.Minute)
	env.check(t, kafkaEvents, noneDead)
	t.Logf("indexer a delivered %d, b %d", a.Indexed(), b.Indexed())
	// Requests (5 events each) split by the rebalance between b, which
	// wrote its parts when it left, and a (which may get some of b's
	// events again): one trace each, with its 5 events once.
	aStopped = true
	stopCollector(t, a) // writes the traces a holds, merged into b's parts
	if n := env.es.Count("traces-*"); n != kafkaEvents/5 {
		t.Fatalf("%d trace documents for %d requests", n, kafkaEvents/5)
	}
	for _, idx := range env.es.IndicesMatching("traces-*") {
		for id, d := range env.es.Docs(idx) {
			if gjson.GetBytes(d, "event_count").Int() != 5 {
				t.Fatalf("trace %s has %s events, want 5: %.300s", id, gjson.GetBytes(d, "event_count").Raw, d)
			}
		}
	}
}

// Ingest through HTTP into Kafka (role ingest), index from Kafka (role
// index): the two halves as separate collectors.
func TestKafkaIngestAndIndexRoles(t *testing.T) {
	env := newKafkaEnv(t)
	cfg := env.cfg(t)
	ing, err := collector.NewRole(cfg, collector.RoleIngest, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ing.Start()
	defer stopCollector(t, ing)
	idx := env.startIndexer(t, env.cfg(t))
	defer stopCollector(t, idx)
	dir := t.TempDir()
	c := writeCorpus(t, dir, 5000, nil)
	sh := startShipper(t, dir, ing.Addr(), filepath.Join(dir, "logs", "*.log"))
	defer sh.stop(t)
	eventually(t, time.Minute, "all lines indexed", func() bool { return env.es.Count("logs-*") >= 5000 })
	time.Sleep(200 * time.Millisecond)
	c.check(t, env.es, 5000)
	if _, ok := env.es.Template("logweave-logs"); !ok {
		t.Fatal("index template not installed at start")
	}
}

// (d) the indexer killed (SIGKILL) mid-stream and restarted: no loss, no
// duplicates.
func TestKafkaIndexerKilledAndRestarted(t *testing.T) {
	collectorBin, _ := buildBinaries(t)
	env := newKafkaEnv(t)
	cfg := env.cfg(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "collector.yaml")
	yml := fmt.Sprintf(`
http: {listen: "127.0.0.1:0"}
kafka: {brokers: [%q], topic: %q, group: %q, partitions: %d}
elasticsearch: {urls: [%q], retry_initial: 10ms, retry_max: 50ms}
indexer: {batch_size: 500}
`, cfg.Kafka.Brokers[0], cfg.Kafka.Topic, cfg.Kafka.Group, cfg.Kafka.Partitions, env.es.URL)
	if err := os.WriteFile(cfgPath, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	env.produce(t, 0, kafkaEvents)
	p := spawn(t, filepath.Join(dir, "indexer.log"), collectorBin, "run", "-role", "index", "-config", cfgPath)
	eventually(t, time.Minute, "indexing under way", func() bool { return env.es.Count("logs-*") > kafkaEvents/4 })
	p.kill()
	killedAt := env.es.Count("logs-*")
	if killedAt >= kafkaEvents {
		t.Fatal("indexer finished before it was killed; the test proves nothing")
	}
	p = spawn(t, filepath.Join(dir, "indexer.log"), collectorBin, "run", "-role", "index", "-config", cfgPath)
	env.waitIndexed(t, kafkaEvents, 3*time.Minute)
	p.term()
	env.check(t, kafkaEvents, noneDead)
	committed, end := env.k.Committed(t, cfg.Kafka.Group)
	if committed != end {
		t.Fatalf("committed %d of %d offsets after a clean stop", committed, end)
	}
	t.Logf("killed with %d indexed; all %d indexed once after restart", killedAt, kafkaEvents)
}

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kb)
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// While Elasticsearch is stalled, the indexer keeps one batch in memory
// and Kafka keeps the backlog: the indexer process does not grow with the
// backlog.
func TestKafkaStalledElasticsearchKeepsIndexerMemoryFlat(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Fatalf("needs /proc: %v", err)
	}
	collectorBin, _ := buildBinaries(t)
	env := newKafkaEnv(t)
	cfg := env.cfg(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "collector.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
http: {listen: "127.0.0.1:0"}
kafka: {brokers: [%q], topic: %q, group: %q, partitions: %d}
elasticsearch: {urls: [%q], retry_initial: 10ms, retry_max: 100ms, breaker_cooldown: 500ms}
`, cfg.Kafka.Brokers[0], cfg.Kafka.Topic, cfg.Kafka.Group, cfg.Kafka.Partitions, env.es.URL)), 0o644)
	env.es.Down.Store(503)
	p := spawn(t, filepath.Join(dir, "indexer.log"), collectorBin, "run", "-role", "index", "-config", cfgPath)
	env.produce(t, 0, kafkaEvents/10) // warm up: the first batch is held
	time.Sleep(time.Second)
	before := rssKiB(t, p.cmd.Process.Pid)
	env.produce(t, kafkaEvents/10, kafkaEvents*9/10)
	time.Sleep(time.Second)
	after := rssKiB(t, p.cmd.Process.Pid)
	t.Logf("indexer RSS %d KiB with a small backlog, %d KiB with %d events waiting", before, after, kafkaEvents)
	if after-before > 32<<10 {
		t.Fatalf("indexer grew by %d KiB while Elasticsearch was stalled", after-before)
	}
	env.es.Down.Store(0)
	env.waitIndexed(t, kafkaEvents, 3*time.Minute)
	p.term()
	env.check(t, kafkaEvents, noneDead)
}

// 1,000 requests across a gateway and 3 services, their events shuffled
// and spread over the topic's partitions by request id, indexed by two
// indexers of one group: exactly 1,000 trace documents, each with its
// services in order, its event count and its error flag.
func TestKafkaThousandRequestsFourServicesOneTraceEach(t *testing.T) {
	env := newKafkaEnv(t)
	a := env.startIndexer(t, env.cfg(t))
	b := env.startIndexer(t, env.cfg(t))
	const requests = 1000
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var lines []string
	for r := 0; r < requests; r++ {
		id := fmt.Sprintf("%032x", r+1)
		at := func(ms int) string {
			return base.Add(time.Duration(r*50+ms) * time.Millisecond).Format(time.RFC3339Nano)
		}
		lines = append(lines,
			fmt.Sprintf(`{"time":%q,"level":"info","service":"orders","msg":"order","request_id":%q}`, at(2), id),
			fmt.Sprintf(`{"time":%q,"level":"info","service":"payments","msg":"charge","request_id":%q}`, at(4), id),
			fmt.Sprintf(`{"time":%q,"level":"debug","service":"inventory","msg":"reserve","request_id":%q}`, at(6), id))
		status := 200
		if r%9 == 0 {
			lines = append(lines, fmt.Sprintf(`{"time":%q,"level":"error","service":"payments","msg":"declined","request_id":%q}`, at(8), id))
			status = 502
		}
		end := base.Add(time.Duration(r*50+10) * time.Millisecond)
		lines = append(lines, fmt.Sprintf(`203.0.113.7 - - [%s] "POST /api/orders HTTP/1.1" %d 10 "-" "curl" request_id=%s request_time=0.010 msec=%d.%03d`,
			end.Format("02/Jan/2006:15:04:05 -0700"), status, id, end.Unix(), end.Nanosecond()/1e6))
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	cfg := env.cfg(t)
	p, err := kafka.NewProducer(cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := pipeline.ParseIndexPattern(cfg.Elasticsearch.Index)
	proc := filters.NewProcessor(idx, nil)
	var ev pipeline.Event
	var recs []pipeline.Record
	for i, l := range lines {
		e := pipeline.Envelope{ID: fmt.Sprintf("ev-%d", i), ReadAt: time.Now(), Host: "node-1", Line: []byte(l)}
		rec := proc.Process(&e, &ev, nil)
		rec.Doc = bytes.Clone(rec.Doc)
		recs = append(recs, rec)
	}
	// Over a few seconds, so the group settles with both members.
	const chunks = 12
	for c := 0; c < chunks; c++ {
		if err := p.Write(context.Background(), recs[c*len(recs)/chunks:(c+1)*len(recs)/chunks]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	p.Close()
	env.waitIndexed(t, len(lines), 2*time.Minute)
	if a.Indexed() == 0 || b.Indexed() == 0 {
		t.Fatalf("one indexer did all the work (a %d, b %d)", a.Indexed(), b.Indexed())
	}
	t.Logf("indexer a delivered %d events, b %d", a.Indexed(), b.Indexed())
	stopCollector(t, a) // both write the traces they hold
	stopCollector(t, b)
	if n := env.es.Count("traces-*"); n != requests {
		t.Fatalf("%d trace documents for %d requests", n, requests)
	}
	for _, ix := range env.es.IndicesMatching("traces-*") {
		for id, d := range env.es.Docs(ix) {
			var r int
			fmt.Sscanf(id, "%x", &r)
			r--
			events := 4 // gateway, orders, payments, inventory
			if r%9 == 0 {
				events = 5 // and the payment error
			}
			if gjson.GetBytes(d, "services").Raw != `["nginx","orders","payments","inventory"]` || gjson.GetBytes(d, "event_count").Int() != int64(events) ||
				gjson.GetBytes(d, "error").Bool() != (r%9 == 0) || gjson.GetBytes(d, "duration_ms").Float() != 10 ||
				gjson.GetBytes(d, `spans.#(service=="payments").error_count`).Int() != int64(b2i(r%9 == 0)) {
				t.Fatalf("request %d: %s", r, d)
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
