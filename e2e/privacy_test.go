package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/filters/privacy"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/internal/kafkatest"
	"github.com/logweave/logweave/shipper"
)

// personal data in the lines below; none of it may be stored anywhere.
var pii = []string{
	"alice@example.com", "bob%40example.com", "bob@example.com", "carol@example.com",
	"4111 1111 1111 1111", "4111111111111111", "DE89370400440532013000", "hunter2",
	"203.0.113.77", "198.51.100.23", "192.0.2.44", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
}

const (
	privRID   = "7f3c2a9e-0b1d-4c5e-9f8a-1b2c3d4e5f60"
	privOther = "0d6f7e1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
)

// One request's events carrying personal data in the message, in JSON
// fields, in nginx's access line (the query string) and in GELF additional
// fields, through the shipper and the collector with privacy on — through
// the disk buffer, and through Kafka: every document, trace and dead letter
// Elasticsearch received, every file the collector wrote and every Kafka
// record is free of it; the trace still assembles; alice's events share
// one pseudonym.
func TestPrivacyNothingUnredactedAnywhere(t *testing.T) {
	for _, through := range []string{"buffer", "kafka"} {
		t.Run(through, func(t *testing.T) {
			dir := t.TempDir()
			es := estest.New()
			defer es.Close()
			es.KeepBodies.Store(true)
			// Elasticsearch refuses one document, quoting its message in the
			// reason as a mapping error does ("Preview of field's value").
			es.SetFault(func(index, id string, doc []byte) (int, string, string) {
				if msg := gjson.GetBytes(doc, "message").String(); strings.Contains(msg, "reject-me") {
					return 400, "document_parsing_exception", "failed to parse field [message]. Preview of field's value: '" + msg + "'"
				}
				return 0, "", ""
			})
			var k *kafkatest.Cluster
			p := privacy.DefaultConfig()
			p.Key = privacy.Keys{strings.Repeat("s3cr3t-", 6)}
			p.Fields = []privacy.FieldRule{
				{Paths: []string{"user.id", "user.email"}, Action: privacy.Pseudonymize},
				{Paths: []string{"source.ip", "client.ip"}, Action: privacy.TruncateIP},
				{Paths: []string{"password", "*.password"}, Action: privacy.Drop},
			}
			col := startCollector(t, dir, es.URL, func(c *collector.Config) {
				c.Privacy = &p
				c.GELF.Listen = "127.0.0.1:0"
				c.Correlation.Window = 500 * time.Millisecond
				if through == "kafka" {
					k = kafkatest.Start(t, 3)
					c.Kafka.Brokers, c.Kafka.Topic, c.Kafka.Group, c.Kafka.Partitions = k.Brokers, k.Topic, k.Topic+"-indexer", k.Partitions
				}
			})
			defer stopCollector(t, col)

			lines := []string{
				`203.0.113.77 - - [06/Dec/2026:10:00:00 +0000] "GET /signup?email=bob%40example.com&plan=pro HTTP/1.1" 200 12 "-" "curl/8.5" request_id=` + privRID + ` request_time=0.012`,
				`{"@timestamp":"2026-12-06T10:00:00.010Z","service":"orders","level":"info","request_id":"` + privRID + `","message":"order placed by alice@example.com","user":{"id":"alice@example.com"},"password":"hunter2"}`,
				`{"@timestamp":"2026-12-06T10:00:00.020Z","service":"payments","level":"error","request_id":"` + privRID + `","message":"card 4111 1111 1111 1111 declined, refund to DE89370400440532013000","user":{"id":"alice@example.com"},"db":{"password":"hunter2","host":"db-1"}}`,
				`2026-12-06 10:00:00.030 INFO [auth] login from 198.51.100.23 Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U request_id=` + privRID,
				`{"@timestamp":"2026-12-06T10:00:00.040Z","service":"orders","request_id":"` + privRID + `","message":"reject-me for alice@example.com","user":{"id":"alice@example.com"}}`,
				`{"@timestamp":"2026-12-06T10:00:01.000Z","service":"orders","request_id":"` + privOther + `","message":"hello","user":{"id":"dave@example.com"}}`,
			}
			file := filepath.Join(dir, "logs", "app.log")
			os.MkdirAll(filepath.Dir(file), 0o755)
			os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
			cfg := shipper.DefaultConfig()
			cfg.Collector.URLs = []string{"http://" + col.Addr()}
			cfg.Collector.Linger = 20 * time.Millisecond
			cfg.State.Path = filepath.Join(t.TempDir(), "shipper")
			in := shipper.InputConfig{Type: "file", Config: defaultTail()}
			in.Paths = []string{file}
			in.ScanInterval, in.PollInterval = 50*time.Millisecond, 20*time.Millisecond
			cfg.Inputs = []shipper.InputConfig{in}
			sh := runShipperConfig(t, cfg)
			defer sh.stop(t)
			// A GELF sender (Docker's gelf driver, graypy ...) with additional fields.
			conn, err := net.Dial("udp", col.GELFAddr())
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, `{"version":"1.1","host":"web-1","short_message":"signup confirmed","timestamp":1796551200.05,"_request_id":%q,"_user_email":"carol@example.com","_client_ip":"192.0.2.44","_service":"signup"}`, privRID)
			conn.Close()

			total := len(lines) + 1
			eventually(t, 30*time.Second, "every event indexed (one as a dead letter)", func() bool {
				return es.Count("logs-*")+es.Count("logweave-deadletter-*") >= total
			})
			var trace []byte
			eventually(t, 30*time.Second, "the request's trace", func() bool {
				for _, idx := range es.IndicesMatching("traces-*") {
					for _, d := range es.Docs(idx) {
						if gjson.GetBytes(d, "trace.id").String() == privRID && gjson.GetBytes(d, "event_count").Int() >= int64(total-1) {
							trace = d
							return true
						}
					}
				}
				return false
			})
			_ = trace

			// Nothing unredacted in what Elasticsearch received, ...
			var received [][]byte
			for _, b := range es.Bodies() {
				received = append(received, b)
			}
			if len(received) == 0 {
				t.Fatal("Elasticsearch received nothing")
			}
			for _, b := range received {
				for _, s := range pii {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("Elasticsearch received %q: %.600s", s, b)
					}
				}
			}
			// ... in every file the collector wrote, ...
			files := 0
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || strings.HasPrefix(path, filepath.Join(dir, "logs")) {
					return nil
				}
				b, _ := os.ReadFile(path)
				files++
				for _, s := range pii {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("%s holds %q", path, s)
					}
				}
				return nil
			})
			if files == 0 && through == "buffer" {
				t.Fatal("the collector wrote no file")
			}
			// ... and in Kafka.
			if k != nil {
				recs := k.Records(t)
				if len(recs) < total {
					t.Fatalf("%d Kafka records, want %d", len(recs), total)
				}
				for _, r := range recs {
					for _, s := range pii {
						if bytes.Contains(r, []byte(s)) {
							t.Errorf("a Kafka record holds %q: %.400s", s, r)
						}
					}
				}
			}
			// What was redacted says so, alice has one pseudonym, the
			// gateway's address is kept to its network, the dead letter is there.
			red, _ := privacy.New(p)
			alice := red.Pseudonyms("alice@example.com")[0]
			users, redacted, dead := map[string]int{}, 0, 0
			for _, idx := range es.Indices() {
				for _, d := range es.Docs(idx) {
					if strings.Contains(idx, "dead") {
						dead++
						continue
					}
					if strings.HasPrefix(idx, "traces-") {
						continue
					}
					if gjson.GetBytes(d, "labels.redacted").Bool() {
						redacted++
					}
					if u := gjson.GetBytes(d, "user.id").String(); u != "" {
						users[u]++
					}
					if gjson.GetBytes(d, "event.dataset").String() == "nginx.access" && gjson.GetBytes(d, "source.ip").String() != "203.0.113.0" {
						t.Errorf("nginx source.ip not truncated to its /24: %s", d)
					}
				}
			}
			if users[alice] != 2 || len(users) != 2 {
				t.Errorf("user.id values %v: want alice's pseudonym %s twice and dave's", users, alice)
			}
			if dead != 1 {
				t.Errorf("%d dead letters, want 1", dead)
			}
			if redacted < 5 {
				t.Errorf("%d documents labelled redacted, want the 5 indexed ones with personal data", redacted)
			}
			metrics := get(t, "http://"+col.Addr()+"/metrics", "")
			for _, m := range []string{`logweave_privacy_redactions_total{action="mask",kind="email"}`, `logweave_privacy_redactions_total{action="pseudonymize",kind="field"}`,
				`logweave_privacy_redactions_total{action="truncate_ip",kind="field"}`, `logweave_privacy_redactions_total{action="drop",kind="field"}`,
				`logweave_privacy_redactions_total{action="mask",kind="credit_card"}`} {
				if !strings.Contains(metrics, m) || strings.Contains(metrics, m+" 0\n") {
					t.Errorf("metric %s missing or 0", m)
				}
			}
			if through == "buffer" {
				checkErase(t, es, p, alice)
			}
		})
	}
}

// checkErase runs `collector erase` for alice: without -yes it only
// counts; with it her two log documents, her dead letter and her request's
// trace go, and nothing of anyone else's.
func checkErase(t *testing.T, es *estest.Server, p privacy.Config, alice string) {
	bin, _ := buildBinaries(t)
	cfgFile := filepath.Join(t.TempDir(), "collector.yaml")
	yml := fmt.Sprintf("elasticsearch: {urls: [%q]}\nbuffer: {path: %q}\nprivacy:\n  key: [%q]\n  fields:\n    - {paths: [user.id, user.email], action: pseudonymize}\n",
		es.URL, t.TempDir(), p.Key[0])
	os.WriteFile(cfgFile, []byte(yml), 0o600)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"erase", "-c", cfgFile, "-field", "user.id", "-value", "alice@example.com", "-log-format", "json"}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	count := func() (logs, traces, dead int, aliceLeft bool) {
		for _, idx := range es.Indices() {
			for _, d := range es.Docs(idx) {
				switch {
				case strings.HasPrefix(idx, "traces-"):
					traces++
				case strings.HasPrefix(idx, "logweave-deadletter-"):
					dead++
				default:
					logs++
				}
				if bytes.Contains(d, []byte(alice)) {
					aliceLeft = true
				}
			}
		}
		return
	}
	logs, traces, dead, _ := count()
	out, code := run()
	if code != 1 || !strings.Contains(out, "4 documents would be deleted; run again with -yes") || !strings.Contains(out, "Elasticsearch snapshots") {
		t.Fatalf("erase without -yes: exit %d\n%s", code, out)
	}
	if out2, code := run("-dry-run"); code != 0 || !strings.Contains(out2, "dry run: 4 documents") {
		t.Fatalf("erase -dry-run: exit %d\n%s", code, out2)
	}
	if l, tr, d, _ := count(); l != logs || tr != traces || d != dead {
		t.Fatal("erase deleted without -yes")
	}
	out, code = run("-yes")
	if code != 0 || !strings.Contains(out, "deleted 4 documents") || strings.Contains(out, "alice@example.com\"") {
		t.Fatalf("erase -yes: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, `"event.action":"privacy-erase"`) || !strings.Contains(out, alice) {
		t.Errorf("no audit event naming the pseudonym:\n%s", out)
	}
	l, tr, d, left := count()
	if left || l != logs-2 || tr != traces-1 || d != dead-1 {
		t.Fatalf("after erase: %d logs (of %d), %d traces (of %d), %d dead letters (of %d), alice left %v\n%s", l, logs, tr, traces, d, dead, left, out)
	}
}

// privacy: in the shipper, for data that must not leave the node: a file's
// lines and a GELF sender's messages are redacted before they are sent or
// spooled; the collector (without privacy) and Elasticsearch receive
// nothing of the personal data, and nor does the shipper's spool on disk.
func TestShipperRedactsBeforeLeavingTheNode(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	es.KeepBodies.Store(true)
	col := startCollector(t, dir, es.URL)
	defer stopCollector(t, col)
	file := filepath.Join(dir, "logs", "app.log")
	os.MkdirAll(filepath.Dir(file), 0o755)
	os.WriteFile(file, []byte(`{"message":"order by alice@example.com","user":{"id":"alice@example.com"},"password":"hunter2"}`+"\n"+
		"2026-12-06 10:00:00.030 INFO [auth] login from 198.51.100.23\n"), 0o644)
	p := privacy.DefaultConfig()
	p.Key = privacy.Keys{strings.Repeat("k", 32)}
	p.Fields = []privacy.FieldRule{{Paths: []string{"user.id"}, Action: privacy.Pseudonymize}, {Paths: []string{"password"}, Action: privacy.Drop}}
	cfg := shipper.DefaultConfig()
	cfg.Privacy = &p
	cfg.Collector.URLs = []string{"http://" + col.Addr()}
	cfg.Collector.Linger = 20 * time.Millisecond
	cfg.State.Path = filepath.Join(dir, "shipper")
	in := shipper.InputConfig{Type: "file", Config: defaultTail()}
	in.Paths = []string{file}
	in.ScanInterval, in.PollInterval = 50*time.Millisecond, 20*time.Millisecond
	g := shipper.InputConfig{Type: "gelf", GELF: gelf.DefaultConfig(), Spool: shipper.DefaultSpoolConfig()}
	g.GELF.Listen = freeUDPAddr(t)
	cfg.Inputs = []shipper.InputConfig{in, g}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sh := runShipperConfig(t, cfg)
	conn, err := net.Dial("udp", g.GELF.Listen)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, `{"version":"1.1","host":"web-1","short_message":"card 4111 1111 1111 1111 declined","_user_email":"carol@example.com"}`)
	conn.Close()
	eventually(t, 20*time.Second, "3 events indexed", func() bool { return es.Count("logs-*") >= 3 })
	sh.stop(t)
	for _, b := range es.Bodies() {
		for _, s := range pii {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("Elasticsearch received %q: %.400s", s, b)
			}
		}
	}
	filepath.WalkDir(cfg.State.Path, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			for _, s := range pii {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("the shipper's %s holds %q", path, s)
				}
			}
		}
		return nil
	})
	red, _ := privacy.New(p)
	found, text := false, false
	for _, idx := range es.IndicesMatching("logs-*") {
		for _, d := range es.Docs(idx) {
			if gjson.GetBytes(d, "user.id").String() == red.Pseudonyms("alice@example.com")[0] && gjson.GetBytes(d, "labels.redacted").Bool() {
				found = true
			}
			if gjson.GetBytes(d, "message").String() == "login from [ipv4]" && gjson.GetBytes(d, "labels.redacted").Bool() {
				text = true // a text line: labelled through its envelope
			}
		}
	}
	if !found || !text {
		t.Errorf("alice's event with her pseudonym and labels.redacted: %v; the text line masked and labelled: %v", found, text)
	}
}
