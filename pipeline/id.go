package pipeline

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// EventID derives a document id from an event's origin: the same origin
// always gives the same id, so a replay overwrites instead of duplicating.
// The shipper passes its host, the file's identity and the line's offset;
// the line's bytes are hashed too, so a reused file identity cannot make a
// new line overwrite an old one. 20 bytes of SHA-256, base64url (27 chars).
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
