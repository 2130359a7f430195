package gelf_test

import (
	"testing"
	"time"

	"github.com/logweave/logweave/inputs/gelf"
)

// FuzzDecode feeds arbitrary datagrams through the reassembler, the
// decompressor and the mapping: never a panic, never more than the limit.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":"1.1","host":"h","short_message":"x","_a":1}`))
	f.Add(chunk(1, 0, 2, []byte(`{"short_`)))
	f.Add(gz([]byte(`{"short_message":"{\"level\":\"warn\"}"}`)))
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00})
	f.Add([]byte{0x1e, 0x0f, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, '{', '}'})
	r := gelf.NewReassembler(64<<10, 1<<20, time.Second)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		p := pkt
		if len(p) >= 2 && p[0] == 0x1e && p[1] == 0x0f {
			whole, err := r.Add(p, time.Now())
			if err != nil || whole == nil {
				return
			}
			p = whole
		}
		msg, err := gelf.Decompress(p, 64<<10)
		if err != nil {
			return
		}
		if len(msg) > 64<<10 {
			t.Fatalf("decompressed %d bytes past the limit", len(msg))
		}
		gelf.Map(msg)
	})
}
