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
type gelfInput struct {
	queued
	srv *gelf.Server
}

func openGELF(cfg gelf.Config, sc SpoolConfig, dir, host string, log *slog.Logger) (*gelfInput, error) {
	sp, err := openSpool("gelf", dir, sc, host, log)
	if err != nil {
		return nil, err
	}
	g := &gelfInput{queued: queued{spool: sp, queue: recvqueue.NewQueue(32768, int64(cfg.MaxPendingBytes)), join: gelf.NewJoiner(int(cfg.MaxMessageBytes), time.Second)}}
	g.envelopes = g.wrap
	g.srv, err = gelf.Listen(cfg, func(p []byte, _ string) { g.put(p) }, log)
	if err != nil {
		sp.buf.Close()
		return nil, err
	}
	g.queued.srv, g.listen = g.srv, g.srv.Addr()
	log.Info("shipper: receiving GELF (udp and tcp)", "addr", g.srv.Addr(), "spool", dir)
	return g, nil
}

// wrap fixes each message's event id here, so a message sent twice (after
// a restart) is indexed once.
func (g *gelfInput) wrap(batch []recvqueue.Received) [][]byte {
	recs := make([][]byte, 0, len(batch))
	for _, m := range batch {
		env := pipeline.Envelope{
			ID:     pipeline.EventID(g.host, "gelf", g.seq.Add(1), m.At.UnixNano(), m.Payload),
			ReadAt: m.At,
			Host:   g.host,
			Format: "gelf",
			Line:   m.Payload,
		}
		recs = append(recs, env.AppendJSON(nil))
	}
	return recs
}

// Addr is where GELF is received.
func (g *gelfInput) Addr() string { return g.srv.Addr() }
