package shipper

import (
	"log/slog"
	"time"

	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/pipeline"
)

// gelfInput receives GELF (UDP and TCP) into its spool. Messages are
// spooled as received, after joining the lines Docker split; the collector
// maps them (format gelf), where the CPU is.
type gelfInput struct{ queued }

func openGELF(cfg gelf.Config, sc SpoolConfig, dir, host string, log *slog.Logger) (*gelfInput, error) {
	sp, err := openSpool("gelf", dir, sc, host, log)
	if err != nil {
		return nil, err
	}
	g := &gelfInput{queued: queued{spool: sp, queue: recvqueue.NewQueue(32768, int64(cfg.MaxPendingBytes)), join: gelf.NewJoiner(int(cfg.MaxMessageBytes), time.Second)}}
	g.envelopes = func(b []recvqueue.Received) []pipeline.Envelope { return gelf.Envelopes(host, b, &g.seq) }
	srv, err := gelf.Listen(cfg, func(p []byte, _ string) { g.put(p) }, log)
	if err != nil {
		sp.buf.Close()
		return nil, err
	}
	g.srv, g.listen = srv, srv.Addr()
	log.Info("shipper: receiving GELF (udp and tcp)", "addr", g.listen, "spool", dir)
	return g, nil
}
