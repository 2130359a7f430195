package pipeline

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
)

// EventID derives a document id from an event's origin: the same origin
// always gives the same id, so a replay overwrites instead of duplicating.
// The shipper passes its host, the file's identity and the line's offset;
// the line's bytes are hashed too, so a reused file identity cannot make a
// new line overwrite an old one. 20 bytes of SHA-256, base64url (27 chars).
func EventID(host, source string, offset, extra int64, line []byte) string {
	sc := idInputs.Get().(*[]byte)
	b := append((*sc)[:0], host...)
	b = append(b, 0)
	b = append(b, source...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(extra))
	b = append(b, line...)
	sum := sha256.Sum256(b)
	if cap(b) <= 64<<10 {
		*sc = b
		idInputs.Put(sc)
	}
	var id [27]byte
	base64.RawURLEncoding.Encode(id[:], sum[:20])
	return string(id[:])
}

// idInputs are reused buffers the hashed bytes are put together in: through
// hash.Hash, every piece escaped to the heap (five allocations an id).
var idInputs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// MaxIDBytes is Elasticsearch's limit on a document _id.
const MaxIDBytes = 512

// ValidID reports whether a client-chosen id can be a document _id as is:
// 1 to MaxIDBytes bytes of printable ASCII without spaces. One id over the
// limit makes Elasticsearch refuse a whole bulk request, so ids from
// outside are checked at ingest and replaced when they fail.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
