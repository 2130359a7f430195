package filters

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/filters/privacy"
	"github.com/logweave/logweave/pipeline"
)

var (
	invalidIDs = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_events_invalid_id_total", Help: "Events whose sender-chosen id could not be a document _id (replaced by a content id)."})
	outOfRange = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_events_timestamp_out_of_range_total", Help: "Events indexed by the time they were read: their own time was too far from it (tagged _timestampoutofrange)."})
)

// Processor turns what an input received into a record ready for the buffer:
// it runs the chain, adds the origin fields (host.name, log.file.path,
// log.offset, event.id) and names the daily index from @timestamp.
type Processor struct {
	Chain Chain
	Index *pipeline.IndexPattern
	Now   func() time.Time // defaults to time.Now
	// TimeRange bounds how far an event's own time may be from when it
	// was read before it no longer names the daily index (0: no bound).
	TimeRange TimeRange
	// TraceFields: records carry what the correlator needs of them
	// (Record.Trace), found here, so that traces are assembled without
	// parsing the documents again. Off when traces are.
	TraceFields bool
	// Privacy redacts the encoded document (privacy:), before anything
	// is stored and before the trace fields are taken from it; nil: off.
	Privacy *privacy.Redactor
}

// TimeRange is the collector's `filters.timestamp` section: an event whose
// @timestamp is more than MaxAge before, or more than MaxAhead after, the
// time it was read is indexed by the time it was read and tagged
// _timestampoutofrange (its @timestamp is kept as it came). A clock at 1970
// or in 9999 then creates no index of its own (and no file of the file
// output), and the event is found among its neighbours.
type TimeRange struct {
	MaxAge   time.Duration `yaml:"max_age"`
	MaxAhead time.Duration `yaml:"max_ahead"`
}

// DefaultTimeRange: a year back, a day ahead. Broken clocks (1970, 9999,
// zero-filled dates) are caught, while a backfill or a shipper catching up
// after an outage keeps each event in its own day.
func DefaultTimeRange() TimeRange {
	return TimeRange{MaxAge: 365 * 24 * time.Hour, MaxAhead: 24 * time.Hour}
}

// Validate checks the section.
func (r TimeRange) Validate(prefix string) error {
	if r.MaxAge < 0 || r.MaxAhead < 0 {
		return fmt.Errorf("%s: max_age and max_ahead must not be negative (0 turns the bound off)", prefix)
	}
	return nil
}

// TagTimestampOutOfRange marks an event indexed by the time it was read
// because its own time was implausibly far from it.
const TagTimestampOutOfRange = "_timestampoutofrange"

// indexTime is the time that names ev's index.
func (r TimeRange) indexTime(ev *pipeline.Event) time.Time {
	t := ev.Time
	if t.IsZero() {
		return t
	}
	if r.MaxAge > 0 && t.Before(ev.ReadAt.Add(-r.MaxAge)) || r.MaxAhead > 0 && t.After(ev.ReadAt.Add(r.MaxAhead)) {
		outOfRange.Inc()
		ev.AddTag(TagTimestampOutOfRange)
		return ev.ReadAt
	}
	return t
}

// NewProcessor returns the collector's standard chain: json, nginx access
// logs, the head of text lines and their key=value pairs (text's defaults,
// DefaultTextConfig, unless given), normalise, request id.
func NewProcessor(index *pipeline.IndexPattern, requestIDFields []string, text ...TextConfig) *Processor {
	tc := DefaultTextConfig()
	if len(text) > 0 {
		tc = text[0]
	}
	loc, err := time.LoadLocation(tc.Timezone)
	if err != nil {
		loc = time.UTC // Validate said so before
	}
	return &Processor{
		Chain: Chain{JSON{}, Nginx{}, Text{Location: loc}, Logfmt{MaxPairs: tc.MaxPairs}, Normalise{}, RequestID{Fields: requestIDFields}},
		Index: index,
	}
}

// Process fills ev from env, runs the chain, and returns the record. The
// record's Doc, then its Trace, are appended to dst (pass a reused buffer
// to save allocations; its storage is all[:len(Doc)+len(Trace)]).
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
	if ev.ID != "" && !pipeline.ValidID(ev.ID) {
		// A client-chosen id Elasticsearch would refuse (over 512 bytes,
		// spaces, control bytes): it would fail its whole bulk request.
		// The content id below takes its place, derived from it too so
		// that a resent envelope keeps its id.
		invalidIDs.Inc()
		ev.ID = pipeline.EventID(env.Host, env.Path+"\x00"+env.ID, env.Offset, ev.ReadAt.UnixNano(), env.Line)
	}
	if ev.ID == "" {
		ev.ID = pipeline.EventID(env.Host, env.Path, env.Offset, ev.ReadAt.UnixNano(), env.Line)
	}
	p.Chain.Apply(ev)
	if env.Host != "" && !ev.Get("host.name").Exists() {
		ev.SetString("host.name", env.Host)
	}
	if env.Path != "" {
		ev.SetString("log.file.path", env.Path)
		ev.SetInt("log.offset", env.Offset)
	}
	if len(env.Fields) > 0 {
		for _, m := range pipeline.Members(env.Fields) {
			if !ev.Get(m.Key).Exists() {
				ev.Set(m.Key, m.Val)
			}
		}
	}
	ev.SetString("event.id", ev.ID)
	indexTime := p.TimeRange.indexTime(ev)
	// The document, then what the correlator needs of it, in one buffer.
	doc := ev.Encode(dst)
	if p.Privacy != nil {
		if red, n := p.Privacy.RedactEvent(nil, doc, b2s(env.Line), b2s(env.Fields), env.Host, env.Path); n > 0 {
			doc = append(doc[:0], red...)
			ev.Encoded(red)
		}
	}
	all := doc
	if p.TraceFields {
		tf := ev.TraceFields()
		all = tf.AppendBinary(doc)
	}
	return pipeline.Record{
		ID:    ev.ID,
		Index: p.Index.Name(indexTime),
		Key:   ev.Key,
		Doc:   all[:len(doc)],
		Trace: all[len(doc):],
	}
}

func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
