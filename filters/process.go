package filters

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/logweave/logweave/pipeline"
)

// Processor turns what an input received into a record ready for the buffer:
// it runs the chain, adds the origin fields (host.name, log.file.path,
// log.offset, event.id) and names the daily index from @timestamp.
type Processor struct {
	Chain Chain
	Index *pipeline.IndexPattern
	Now   func() time.Time // defaults to time.Now
}

// NewProcessor returns the collector's standard chain: json, normalise,
// request id.
func NewProcessor(index *pipeline.IndexPattern, requestIDFields []string) *Processor {
	return &Processor{
		Chain: Chain{JSON{}, Normalise{}, RequestID{Fields: requestIDFields}},
		Index: index,
	}
}

// Process fills ev from env, runs the chain, and returns the record. The
// record's Doc is appended to dst (pass a reused buffer to save allocations).
func (p *Processor) Process(env *pipeline.Envelope, ev *pipeline.Event, dst []byte) pipeline.Record {
	ev.Reset()
	ev.Line = env.Line
	ev.ReadAt = env.ReadAt
	if ev.ReadAt.IsZero() {
		if p.Now != nil {
			ev.ReadAt = p.Now()
		} else {
			ev.ReadAt = time.Now()
		}
	}
	ev.ID = env.ID
	if ev.ID == "" {
		ev.ID = EventID(env.Host, env.Path, env.Offset, ev.ReadAt.UnixNano(), env.Line)
	}
	p.Chain.Apply(ev)
	if env.Host != "" && !ev.Get("host.name").Exists() {
		ev.SetString("host.name", env.Host)
	}
	if env.Path != "" {
		ev.SetString("log.file.path", env.Path)
		ev.SetInt("log.offset", env.Offset)
	}
	ev.SetString("event.id", ev.ID)
	var idx [64]byte
	return pipeline.Record{
		ID:    ev.ID,
		Index: string(p.Index.Append(idx[:0], ev.Time)),
		Key:   ev.Key,
		Doc:   ev.Encode(dst),
	}
}

// EventID derives a document id from an event's origin: the same origin
// always gives the same id, so a replay overwrites instead of duplicating.
// 20 bytes of SHA-256, base64url (27 characters).
func EventID(host, source string, offset, extra int64, line []byte) string {
	h := sha256.New()
	var n [16]byte
	binary.LittleEndian.PutUint64(n[:8], uint64(offset))
	binary.LittleEndian.PutUint64(n[8:], uint64(extra))
	h.Write([]byte(host))
	h.Write([]byte{0})
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(n[:])
	h.Write(line)
	var sum [32]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0])[:20])
}
