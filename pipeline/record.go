package pipeline

import (
	"encoding/binary"
	"errors"
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

// AppendBinary appends r in the buffer's framing: four uvarint-prefixed fields.
func (r *Record) AppendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r.ID)))
	dst = append(dst, r.ID...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Index)))
	dst = append(dst, r.Index...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Doc)))
	return append(dst, r.Doc...)
}

var errShortRecord = errors.New("pipeline: truncated record")

// UnmarshalBinary decodes what AppendBinary wrote. Doc aliases b.
func (r *Record) UnmarshalBinary(b []byte) error {
	var fields [4][]byte
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return errShortRecord
		}
		fields[i] = b[k : k+int(n)]
		b = b[k+int(n):]
	}
	r.ID, r.Index, r.Key, r.Doc = string(fields[0]), string(fields[1]), string(fields[2]), fields[3]
	return nil
}
