package shipper

import (
	"bytes"
	"log/slog"
	"time"

	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/pipeline"
)

// syslogInput receives syslog (UDP and TCP, RFC 5424 and 3164) into its
// spool. Messages are mapped here (the timezone of RFC 3164 timestamps is
// this input's) and spooled as JSON log lines.
type syslogInput struct{ queued }

func openSyslog(cfg syslog.Config, sc SpoolConfig, dir, host string, log *slog.Logger) (*syslogInput, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	sp, err := openSpool("syslog", dir, sc, host, log)
	if err != nil {
		return nil, err
	}
	s := &syslogInput{queued: queued{spool: sp, queue: recvqueue.NewQueue(10000, 64<<20)}}
	s.envelopes = func(b []recvqueue.Received) []pipeline.Envelope { return syslog.Envelopes(host, b, loc, &s.seq) }
	srv, err := syslog.Listen(cfg, func(msg []byte, _ time.Time) { s.put(bytes.Clone(msg)) }, log)
	if err != nil {
		sp.buf.Close()
		return nil, err
	}
	s.srv, s.listen = srv, srv.Addr()
	log.Info("shipper: receiving syslog (udp and tcp)", "addr", s.listen, "spool", dir)
	return s, nil
}
