package elasticsearch_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

func TestSetupInstallsTemplatesAndILM(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	cfg := elasticsearch.DefaultConfig()
	cfg.URLs = []string{srv.URL}
	cfg.Index = "microservices-%{+YYYY.MM.dd}"
	cfg.RetentionDays = 14
	cfg.Replicas = 0
	o, err := elasticsearch.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	tpl, ok := srv.Template(elasticsearch.LogsTemplate)
	if !ok {
		t.Fatal("logs template missing")
	}
	for path, want := range map[string]string{
		"index_patterns.0":                                                              "microservices-*",
		"template.settings.index\\.lifecycle\\.name":                                    elasticsearch.ILMPolicy,
		"template.settings.number_of_replicas":                                          "0",
		"template.settings.index\\.mapping\\.total_fields\\.limit":                      "2000",
		"template.mappings.properties.trace.properties.id.type":                         "keyword",
		"template.mappings.properties.http.properties.request.properties.id.type":       "keyword",
		"template.mappings.properties.message.type":                                     "text",
		"template.mappings.properties.@timestamp.type":                                  "date",
		"template.mappings.dynamic_templates.0.strings_as_keyword.mapping.ignore_above": "1024",
	} {
		if got := gjson.GetBytes(tpl, path).String(); got != want {
			t.Errorf("template %s = %q, want %q", path, got, want)
		}
	}
	dlq, ok := srv.Template(elasticsearch.DeadLetterTemplate)
	if !ok || gjson.GetBytes(dlq, "template.mappings.dynamic").String() != "false" {
		t.Fatalf("dead-letter template: %s", dlq)
	}
	pol, ok := srv.ILMPolicy(elasticsearch.ILMPolicy)
	if !ok || gjson.GetBytes(pol, "policy.phases.delete.min_age").String() != "14d" {
		t.Fatalf("ILM policy: %s", pol)
	}
}

func TestAuthenticationHeaders(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Write([]byte(`{"errors":false,"items":[{"index":{"status":201}}]}`))
	}))
	defer srv.Close()
	for _, c := range []struct {
		user, pass, key, want string
	}{
		{"elastic", "changeme", "", "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:changeme"))},
		{"", "", "a2V5OnNlY3JldA==", "APIKey a2V5OnNlY3JldA=="},
	} {
		cfg := elasticsearch.DefaultConfig()
		cfg.URLs = []string{srv.URL}
		cfg.Username, cfg.Password, cfg.APIKey = c.user, c.pass, c.key
		if err := cfg.Validate("elasticsearch"); err != nil {
			t.Fatal(err)
		}
		o, err := elasticsearch.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Write(context.Background(), records(1)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		if last != c.want {
			t.Errorf("Authorization %q, want %q", last, c.want)
		}
	}
}

// Bulk bodies are gzipped at level 1 unless told otherwise; a level gzip
// does not have is refused by name.
func TestCompressionLevel(t *testing.T) {
	cfg := elasticsearch.DefaultConfig()
	cfg.URLs = []string{"http://127.0.0.1:9200"}
	if cfg.CompressionLevel != 1 || cfg.Validate("elasticsearch") != nil {
		t.Fatalf("default level %d: %v", cfg.CompressionLevel, cfg.Validate("elasticsearch"))
	}
	for _, l := range []int{0, 10} {
		cfg.CompressionLevel = l
		if err := cfg.Validate("elasticsearch"); err == nil || !strings.Contains(err.Error(), "elasticsearch.compression_level") {
			t.Fatalf("level %d: %v", l, err)
		}
	}
	cfg.Compression = false
	if err := cfg.Validate("elasticsearch"); err != nil {
		t.Fatalf("level ignored without compression: %v", err)
	}
}

// With compression on, bulk bodies go gzipped (and decode to the bulk
// body); with it off, as they are.
func TestBulkBodiesGzipped(t *testing.T) {
	for _, on := range []bool{true, false} {
		var enc string
		var body []byte
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			if !strings.HasSuffix(r.URL.Path, "/_bulk") {
				return
			}
			enc = r.Header.Get("Content-Encoding")
			body, _ = estest.ReadBody(r)
			io.WriteString(w, `{"errors":false,"items":[{"index":{"status":201}}]}`)
		}))
		cfg := elasticsearch.DefaultConfig()
		cfg.URLs, cfg.Compression = []string{srv.URL}, on
		o, err := elasticsearch.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = o.Write(context.Background(), []pipeline.Record{{ID: "a", Index: "logs-x", Doc: []byte(`{"m":1}`)}})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if (enc == "gzip") != on || !strings.Contains(string(body), `{"m":1}`) {
			t.Fatalf("compression %v: Content-Encoding %q, body %q", on, enc, body)
		}
	}
}
