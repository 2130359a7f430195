package cli

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"
)

// ServePprof serves Go's profiles (net/http/pprof) on addr, for profiling
// the process as it runs: `go tool pprof http://ADDR/debug/pprof/profile`.
// Off unless asked for (-pprof): they tell a lot about the process.
func ServePprof(addr string, log *slog.Logger) {
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		log.Info("pprof: serving profiles", "addr", addr)
		if err := srv.ListenAndServe(); err != nil {
			log.Error("pprof: cannot serve", "addr", addr, "error", err)
		}
	}()
}
