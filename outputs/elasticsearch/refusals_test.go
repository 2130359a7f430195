package elasticsearch_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

// Whole requests refused, and clusters that never answer: what was
// "rejected" by the request is not rejected by Elasticsearch, so nothing may
// be dead-lettered or dropped for it.

// faultOutput retries fast and opens its breaker after 3 failures.
func faultOutput(t *testing.T, url string, edit func(*elasticsearch.Config)) *elasticsearch.Output {
	t.Helper()
	return newOutput(t, url, func(c *elasticsearch.Config) {
		c.RetryInitial, c.RetryMax = 5*time.Millisecond, 50*time.Millisecond
		c.BreakerFailures, c.BreakerCooldown = 3, 100*time.Millisecond
	}, edit)
}

func deadLetters(srv *estest.Server) map[string][]byte {
	return srv.Docs("logweave-deadletter-" + time.Now().UTC().Format("2006.01.02"))
}

// writeAsync starts Write and returns its result channel.
func writeAsync(o *elasticsearch.Output, recs []pipeline.Record) <-chan error {
	done := make(chan error, 1)
	go func() { done <- o.Write(context.Background(), recs) }()
	return done
}

func waitBreaker(t *testing.T, o *elasticsearch.Output, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, why := o.BreakerOpen()
		if open && strings.Contains(why, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker open=%v reason %q, want open naming %q", open, why, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitDone(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Write did not finish after the fault ended")
	}
}

func stillRunning(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Write returned (%v) while the cluster still refused: its records would be committed", err)
	default:
	}
}

// A rotated password: every request answers 401. The documents wait, the
// breaker opens naming the credentials, nothing is dead-lettered, and all of
// them are indexed once the credentials work again.
func TestRefusedCredentialsKeepEverything(t *testing.T) {
	for _, code := range []int32{401, 403} {
		srv := estest.New()
		srv.Down.Store(code)
		o := faultOutput(t, srv.URL, nil)
		done := writeAsync(o, records(300))
		waitBreaker(t, o, "credentials")
		time.Sleep(300 * time.Millisecond)
		stillRunning(t, done)
		srv.Down.Store(0)
		waitDone(t, done)
		if n := srv.Count("logs-*"); n != 300 {
			t.Errorf("%d: %d of 300 indexed", code, n)
		}
		if n := len(deadLetters(srv)); n != 0 {
			t.Errorf("%d: %d dead-lettered", code, n)
		}
		srv.Close()
	}
}

// 413 from a proxy in front: the batch is sent in halves until each part
// fits; the one document over the limit on its own is dead-lettered,
// truncated, with the reason.
func TestTooLargeSplitsTheBatch(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	srv.MaxContentLength.Store(16 << 10)
	o := faultOutput(t, srv.URL, func(c *elasticsearch.Config) { c.Compression = false })
	recs := records(400)
	huge := `{"message":"` + strings.Repeat("x", 40<<10) + `"}`
	recs[123].Doc = []byte(huge)
	if err := o.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("logs-*"); n != 399 {
		t.Fatalf("%d of 399 indexed", n)
	}
	dl := deadLetters(srv)
	d, ok := dl["id-123"]
	if len(dl) != 1 || !ok {
		t.Fatalf("dead letters %d, want only id-123", len(dl))
	}
	if gjson.GetBytes(d, "logweave.status").Int() != 413 || !gjson.GetBytes(d, "logweave.original_truncated").Bool() ||
		gjson.GetBytes(d, "logweave.original_bytes").Int() != int64(len(huge)) ||
		len(gjson.GetBytes(d, "event.original").String()) >= len(huge) || len(d) > 16<<10 {
		t.Fatalf("dead letter of the oversized document: %.300s", d)
	}
}

// 400 for a whole request: Elasticsearch validates every action first, so
// one bad document (here an _id over 512 bytes, and a body a proxy refuses)
// fails its 999 neighbours. They are found by halves; only the culprits are
// dead-lettered.
func TestBadRequestFindsTheDocument(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	srv.SetRequestFault(func(body []byte) (int, string, string) {
		if bytes.Contains(body, []byte(`{"message":"poison"}`)) {
			return 400, "x_content_parse_exception", "proxy refused the body"
		}
		return 0, "", ""
	})
	o := faultOutput(t, srv.URL, nil)
	recs := records(1000)
	recs[10].ID = strings.Repeat("a", 600)
	recs[777].Doc = []byte(`{"message":"poison"}`)
	if err := o.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("logs-*"); n != 998 {
		t.Fatalf("%d of 998 indexed", n)
	}
	dl := deadLetters(srv)
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl))
	}
	var reasons []string
	for id, d := range dl {
		if !pipeline.ValidID(id) {
			t.Errorf("dead letter with an invalid _id %.40s", id)
		}
		reasons = append(reasons, gjson.GetBytes(d, "error.type").String())
	}
	if !strings.Contains(strings.Join(reasons, " "), "action_request_validation_exception") ||
		!strings.Contains(strings.Join(reasons, " "), "x_content_parse_exception") {
		t.Fatalf("dead-letter reasons %v", reasons)
	}
}

// The dead-letter index refuses too (a template gone wrong): the event is
// not dropped; Write keeps it until the dead letter is written.
func TestDeadLetterRefusedKeepsTheEvent(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	var dlqRefuses = true
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	srv.SetFault(func(index, id string, doc []byte) (int, string, string) {
		<-mu
		defer func() { mu <- struct{}{} }()
		if id == "id-3" && strings.HasPrefix(index, "logs-") {
			return 400, "mapper_parsing_exception", "failed to parse field [n]"
		}
		if strings.HasPrefix(index, "logweave-deadletter") && dlqRefuses {
			return 400, "mapper_parsing_exception", "dead-letter mapping broken"
		}
		return 0, "", ""
	})
	o := faultOutput(t, srv.URL, nil)
	done := writeAsync(o, records(50))
	waitBreaker(t, o, "dead-letter write refused")
	stillRunning(t, done)
	<-mu
	dlqRefuses = false
	mu <- struct{}{}
	waitDone(t, done)
	if n := srv.Count("logs-*"); n != 49 {
		t.Fatalf("%d of 49 indexed", n)
	}
	if _, ok := deadLetters(srv)["id-3"]; !ok {
		t.Fatal("the rejected event is not in the dead-letter index")
	}
}

// An answer whose items carry no status says nothing about them: they are
// sent again (same ids), not dead-lettered.
func TestItemsWithoutStatusAreSentAgain(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	srv.OmitItemStatus.Store(true)
	o := faultOutput(t, srv.URL, nil)
	done := writeAsync(o, records(100))
	waitBreaker(t, o, "without an item status")
	stillRunning(t, done)
	srv.OmitItemStatus.Store(false)
	waitDone(t, done)
	if n, d := srv.Count("logs-*"), len(deadLetters(srv)); n != 100 || d != 0 {
		t.Fatalf("%d indexed, %d dead-lettered; want 100 and 0", n, d)
	}
}

// A cluster that accepts the connection and never answers: each request
// ends after request_timeout, the breaker opens saying so, and the batch is
// delivered once the cluster answers again.
func TestHungClusterTimesOut(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	srv.Hang.Store(true)
	o := faultOutput(t, srv.URL, func(c *elasticsearch.Config) { c.RequestTimeout = 100 * time.Millisecond })
	done := writeAsync(o, records(100))
	waitBreaker(t, o, "request_timeout")
	stillRunning(t, done)
	srv.Hang.Store(false)
	waitDone(t, done)
	if n := srv.Count("logs-*"); n != 100 {
		t.Fatalf("%d of 100 indexed", n)
	}
}
