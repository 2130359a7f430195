package gelf_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/inputs/gelf"
)

func dockerMsg(cid string, level int, short string) []byte {
	return []byte(fmt.Sprintf(`{"version":"1.1","host":"h","short_message":%q,"level":%d,"_container_id":%q,"_container_name":"app"}`, short, level, cid))
}

// Docker's gelf driver sends a 40,000-byte line as parts of 16 KiB, 16 KiB
// and the rest, unmarked; the joiner gives back one message with the whole
// line, while other containers' and streams' messages pass at once.
func TestJoinerJoinsDockerSplits(t *testing.T) {
	j := gelf.NewJoiner(1<<20, 2*time.Second)
	line := strings.Repeat("a", gelf.DockerSplit) + strings.Repeat("b", gelf.DockerSplit) + strings.Repeat("c", 40000-2*gelf.DockerSplit)
	now := time.Now()
	var out [][]byte
	out = append(out, j.Add(dockerMsg("c1", 6, line[:gelf.DockerSplit]), now)...)
	out = append(out, j.Add(dockerMsg("c2", 6, "other container"), now)...)
	out = append(out, j.Add(dockerMsg("c1", 3, "stderr of the same container"), now)...)
	out = append(out, j.Add([]byte(`{"short_message":"not docker"}`), now)...)
	if len(out) != 3 {
		t.Fatalf("%d messages passed while a line is held, want 3", len(out))
	}
	out = append(out, j.Add(dockerMsg("c1", 6, line[gelf.DockerSplit:2*gelf.DockerSplit]), now)...)
	if len(out) != 3 {
		t.Fatal("a middle part let the line go")
	}
	out = append(out, j.Add(dockerMsg("c1", 6, line[2*gelf.DockerSplit:]), now)...)
	if len(out) != 4 {
		t.Fatalf("%d messages, want the joined line as the 4th", len(out))
	}
	joined := gjson.ParseBytes(out[3])
	if joined.Get("short_message").String() != line || joined.Get("_container_name").String() != "app" || joined.Get("level").Int() != 6 {
		t.Fatalf("joined message wrong: %d bytes of short_message, fields %s", len(joined.Get("short_message").String()), joined.Get("_container_name"))
	}
	if len(j.Flush()) != 0 {
		t.Fatal("something still held")
	}
}

// A line of exactly 16 KiB has no shorter last part: it is let go after
// the timeout.
func TestJoinerLetsGoAfterTimeout(t *testing.T) {
	j := gelf.NewJoiner(1<<20, 2*time.Second)
	now := time.Now()
	if out := j.Add(dockerMsg("c1", 6, strings.Repeat("x", gelf.DockerSplit)), now); len(out) != 0 {
		t.Fatal("a 16 KiB part passed at once")
	}
	if out := j.Expire(now.Add(time.Second)); len(out) != 0 {
		t.Fatal("let go before the timeout")
	}
	out := j.Expire(now.Add(3 * time.Second))
	if len(out) != 1 || len(gjson.GetBytes(out[0], "short_message").String()) != gelf.DockerSplit {
		t.Fatalf("got %d messages", len(out))
	}
}
