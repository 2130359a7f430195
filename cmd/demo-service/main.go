// Command demo-service is a small HTTP service for logweave's demos and
// tests: it logs one JSON line per step with the X-Request-ID it was given
// (as services behind the nginx gateway do), optionally calls the next
// service with the same header, and answers.
//
//	demo-service -name orders -listen :8080 -next http://payments:8080/pay [-log-file /var/log/app/orders.log]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"
)

var version = "dev" // set with -ldflags "-X main.version=..."

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	name := flag.String("name", "demo", "service.name in the log lines")
	listen := flag.String("listen", ":8080", "HTTP address")
	next := flag.String("next", "", "URL of the service to call for each request (optional)")
	logFile := flag.String("log-file", "", "append the log lines to this file instead of stdout (for a shipper sidecar: a node agent tailing stdout would ship them twice)")
	failEvery := flag.Int("fail-every", 0, "answer 502 to every Nth request (0: never)")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}

	var out io.Writer = os.Stdout
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		out = f
	}
	var mu sync.Mutex
	logLine := func(level, msg, id string, extra map[string]any) {
		rec := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "level": level, "service": *name, "msg": msg}
		if id != "" {
			rec["request_id"] = id
		}
		for k, v := range extra {
			rec[k] = v
		}
		b, _ := json.Marshal(rec)
		mu.Lock()
		out.Write(append(b, '\n'))
		mu.Unlock()
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var n int64
	var nmu sync.Mutex
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if id == "" {
			id = fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
		}
		start := time.Now()
		logLine("info", "handling "+r.Method+" "+r.URL.Path, id, nil)
		status := http.StatusOK
		if *next != "" {
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, *next, nil)
			req.Header.Set("X-Request-ID", id)
			resp, err := client.Do(req)
			switch {
			case err != nil:
				logLine("error", "calling "+*next+" failed: "+err.Error(), id, nil)
				status = http.StatusBadGateway
			default:
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					logLine("error", fmt.Sprintf("%s answered %d", *next, resp.StatusCode), id, nil)
					status = http.StatusBadGateway
				}
			}
		}
		nmu.Lock()
		n++
		fail := *failEvery > 0 && n%int64(*failEvery) == 0
		nmu.Unlock()
		if fail {
			logLine("error", "simulated failure", id, nil)
			status = http.StatusBadGateway
		}
		logLine("info", "done", id, map[string]any{"duration_ms": time.Since(start).Milliseconds(), "status": status})
		w.Header().Set("X-Request-ID", id)
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s %d\n", *name, status)
	})
	logLine("info", "demo-service "+version+" listening on "+*listen, "", nil)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
