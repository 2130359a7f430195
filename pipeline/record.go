package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Record is a processed event ready for an output: its final JSON document,
// the index it belongs to, its deterministic id and its partitioning key.
// Records are what the collector makes durable (disk buffer or Kafka) before
// it acknowledges a batch.
type Record struct {
	ID    string
	Index string
	Key   string
	Doc   []byte
	// Trace is what the correlator needs of the event (TraceFields, in
	// its binary form), found by the filters; nil when the event has no
	// trace.id, or when it was made durable by a version that did not
	// carry it (the correlator then reads the fields from Doc).
	Trace []byte
	// Cond, when set, makes the write conditional (outputs that support
	// it: Elasticsearch's optimistic concurrency). Not framed: only the
	// indexer's own writes (trace documents) carry it.
	Cond *Condition
}

// Condition is a conditional write: Create only if no document has the
// id, else only if the document is still at SeqNo/PrimaryTerm (the
// version it was read at). A write whose condition fails is a conflict,
// for the writer to read again and redo.
type Condition struct {
	Create      bool
	SeqNo       int64
	PrimaryTerm int64
}

// ConflictError lists the conditional records (Condition) that an output
// did not write because their condition failed: the document was created
// or changed since it was read. Everything else was written.
type ConflictError struct{ Records []Record }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%d conditional writes conflicted (the documents changed since they were read)", len(e.Records))
}

// Lookup is an output that can read documents back: those in the indices
// of indexPattern (Logstash-style) whose field holds one of values, by
// that value, with the versions to write them again conditionally on.
type Lookup interface {
	Lookup(ctx context.Context, indexPattern, field string, values []string) (map[string]StoredDoc, error)
}

// StoredDoc is a document as read back: its source, its index, and its
// version (Condition's SeqNo and PrimaryTerm).
type StoredDoc struct {
	Doc         []byte
	Index       string
	SeqNo       int64
	PrimaryTerm int64
}

// AppendBinary appends r in the buffer's framing: four uvarint-prefixed
// fields (ID, Index, Key, Doc), and a fifth (Trace) when there is one. A
// version that knew only the four reads such a record and ignores the
// fifth, so a collector can be rolled back over its own buffer.
func (r *Record) AppendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r.ID)))
	dst = append(dst, r.ID...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Index)))
	dst = append(dst, r.Index...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Doc)))
	dst = append(dst, r.Doc...)
	if len(r.Trace) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(r.Trace)))
		dst = append(dst, r.Trace...)
	}
	return dst
}

var errShortRecord = errors.New("pipeline: truncated record")

// UnmarshalBinary decodes what AppendBinary wrote. ID, Key, Doc and Trace
// alias b (the indexer's batches are valid until the next is read, and
// what outputs keep they copy): two allocations per event fewer. r.Index
// is kept when it equals the record's (decoding into the record before
// shares the string of their index).
func (r *Record) UnmarshalBinary(b []byte) error {
	var fields [5][]byte
	for i := range fields {
		if i == 4 && len(b) == 0 {
			break // written without Trace
		}
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return errShortRecord
		}
		fields[i] = b[k : k+int(n)]
		b = b[k+int(n):]
	}
	r.ID, r.Key, r.Doc, r.Trace = b2s(fields[0]), b2s(fields[2]), fields[3], fields[4]
	if r.Index != string(fields[1]) { // consecutive records mostly share their index: keep its string
		r.Index = string(fields[1])
	}
	return nil
}
