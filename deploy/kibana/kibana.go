// Package kibana holds logweave's Kibana saved objects (logweave.ndjson:
// data views for the logs and traces indices, the "Request trace", "Error
// traces" and "Slowest traces" searches, and the "logweave: requests"
// dashboard) and imports them through Kibana's saved objects API.
package kibana

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"time"
)

//go:embed logweave.ndjson
var savedObjects []byte

// Config is the collector's `kibana:` section.
type Config struct {
	URL      string `yaml:"url"` // e.g. http://kibana:5601; empty: no import
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	APIKey   string `yaml:"api_key"`
}

// Objects returns the saved objects with the data views pointed at the
// index patterns in use (their literal prefix and a *).
func Objects(logsPrefix, tracesPrefix string) []byte {
	return []byte(strings.NewReplacer(
		`"title":"logs-*"`, fmt.Sprintf(`"title":%q`, logsPrefix+"*"),
		`"title":"traces-*"`, fmt.Sprintf(`"title":%q`, tracesPrefix+"*"),
	).Replace(string(savedObjects)))
}

// Import posts the objects to Kibana's _import API, overwriting earlier
// versions, and reports what Kibana refused.
func Import(ctx context.Context, cfg Config, objects []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "logweave.ndjson")
	if err != nil {
		return err
	}
	fw.Write(objects)
	mw.Close()
	url := strings.TrimRight(cfg.URL, "/") + "/api/saved_objects/_import?overwrite=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("kbn-xsrf", "logweave")
	switch {
	case cfg.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+cfg.APIKey)
	case cfg.Username != "":
		req.SetBasicAuth(cfg.Username, cfg.Password)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kibana import: %s: %s", resp.Status, out)
	}
	if !bytes.Contains(out, []byte(`"success":true`)) {
		return fmt.Errorf("kibana import refused some objects: %s", out)
	}
	return nil
}
