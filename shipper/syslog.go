package shipper

import (
	"bytes"
	"log/slog"
	"time"

	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/internal/malformed"
	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/pipeline"
)

// syslogInput receives syslog (UDP and TCP, RFC 5424 and 3164) into its
// spool. Messages are mapped here (the timezone of RFC 3164 timestamps is
// this input's) and spooled as JSON log lines.
type syslogInput struct {
	queued
	srv *syslog.Server
	loc *time.Location
}

func openSyslog(cfg syslog.Config, sc SpoolConfig, dir, host string, log *slog.Logger) (*syslogInput, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	sp, err := openSpool("syslog", dir, sc, host, log)
	if err != nil {
		return nil, err
	}
	s := &syslogInput{queued: queued{spool: sp, queue: recvqueue.NewQueue(10000, 64<<20)}, loc: loc}
	s.envelopes = s.wrap
	s.srv, err = syslog.Listen(cfg, func(msg []byte, _ time.Time) { s.put(bytes.Clone(msg)) }, log)
	if err != nil {
		sp.buf.Close()
		return nil, err
	}
	s.queued.srv, s.listen = s.srv, s.srv.Addr()
	log.Info("shipper: receiving syslog (udp and tcp)", "addr", s.srv.Addr(), "spool", dir)
	return s, nil
}

// wrap maps each message (one without a syslog header is kept as its
// text) and fixes its event id.
func (s *syslogInput) wrap(batch []recvqueue.Received) [][]byte {
	recs := make([][]byte, 0, len(batch))
	for _, m := range batch {
		msg, ok := syslog.Parse(m.Payload, m.At, s.loc)
		if !ok {
			malformed.Count("syslog", "no_header")
		}
		env := pipeline.Envelope{
			ID:     pipeline.EventID(s.host, "syslog", s.seq.Add(1), m.At.UnixNano(), m.Payload),
			ReadAt: m.At,
			Host:   s.host,
			Line:   syslog.Map(&msg, ok),
		}
		recs = append(recs, env.AppendJSON(nil))
	}
	return recs
}

// Addr is where syslog is received.
func (s *syslogInput) Addr() string { return s.srv.Addr() }
