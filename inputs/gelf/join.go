package gelf

import (
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// DockerSplit is the size at which Docker cuts a container's output line:
// its log copier reads 16 KiB at a time and hands each piece to the log
// driver as its own message.
const DockerSplit = 16 << 10

// Joiner puts back together the lines Docker's gelf log driver split. The
// driver sends every 16 KiB piece of a long line as a GELF message of its
// own and marks none of them as a part, so a message from a container
// (_container_id) whose short_message is exactly 16 KiB is held, and the
// next messages of the same container and level are appended until one is
// shorter. A held line is let go after the timeout (a line of exactly
// 16 KiB has no shorter end), or when it reaches the size limit.
type Joiner struct {
	max     int
	timeout time.Duration
	open    map[string]*heldLine
}

type heldLine struct {
	first []byte // the first part's message, whose fields the line keeps
	text  []byte
	at    time.Time
}

// maxHeld bounds how many containers can have a line held at once.
const maxHeld = 1024

// NewJoiner joins lines up to max bytes.
func NewJoiner(max int, timeout time.Duration) *Joiner {
	return &Joiner{max: max, timeout: timeout, open: map[string]*heldLine{}}
}

// Add takes a decoded GELF message and returns the messages now complete
// (none while a line is held, the joined line when its last part came).
func (j *Joiner) Add(msg []byte, now time.Time) [][]byte {
	cid := gjson.GetBytes(msg, "_container_id")
	if !cid.Exists() {
		return [][]byte{msg}
	}
	short := gjson.GetBytes(msg, "short_message").String()
	key := cid.String() + "/" + gjson.GetBytes(msg, "level").Raw
	h := j.open[key]
	if h == nil {
		if len(short) != DockerSplit {
			return [][]byte{msg}
		}
		var out [][]byte
		if len(j.open) >= maxHeld {
			out = j.letGo(func(*heldLine) bool { return true })
		}
		j.open[key] = &heldLine{first: msg, text: []byte(short), at: now}
		return out
	}
	h.text = append(h.text, short...)
	h.at = now
	if len(short) == DockerSplit && len(h.text) < j.max {
		return nil
	}
	delete(j.open, key)
	return [][]byte{h.message()}
}

// Expire lets go of lines held longer than the timeout.
func (j *Joiner) Expire(now time.Time) [][]byte {
	return j.letGo(func(h *heldLine) bool { return now.Sub(h.at) >= j.timeout })
}

// Flush lets go of every held line.
func (j *Joiner) Flush() [][]byte {
	return j.letGo(func(*heldLine) bool { return true })
}

func (j *Joiner) letGo(which func(*heldLine) bool) [][]byte {
	var out [][]byte
	for k, h := range j.open {
		if which(h) {
			out = append(out, h.message())
			delete(j.open, k)
		}
	}
	return out
}

// message is the first part's message with the whole line as short_message.
func (h *heldLine) message() []byte {
	var e pipeline.Event
	if !e.SetObject(h.first) {
		return h.first
	}
	e.Set("short_message", pipeline.AppendJSONString(nil, string(h.text)))
	return e.Encode(nil)
}
