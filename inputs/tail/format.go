package tail

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

// Formats of container log files.
const (
	FormatRaw    = "raw"    // one line is one event
	FormatDocker = "docker" // Docker's json-file driver: {"log":"…\n","stream":"stdout","time":"…"}
	FormatCRI    = "cri"    // CRI-O / containerd: TIME STREAM P|F MESSAGE
	// FormatAuto decodes each line as docker or cri by its shape, for
	// /var/log/pods on a node whatever its runtime (with Docker, the files
	// there link to json-file logs).
	FormatAuto = "auto"
)

// record is one decoded line of a container log: its text, the runtime's
// time and stream, and whether it is the last part of a split line.
type record struct {
	text    []byte
	time    time.Time
	stream  string
	partial bool
}

// decode parses one physical line in format. ok is false when the line does
// not have the format's shape; it is then shipped raw.
func decode(format string, line []byte) (r record, ok bool) {
	if format == FormatAuto {
		format = FormatCRI
		if len(line) > 0 && line[0] == '{' {
			format = FormatDocker
		}
	}
	switch format {
	case FormatDocker:
		if len(line) == 0 || line[0] != '{' {
			return r, false
		}
		var buf [4]pipeline.Member
		members, ok := pipeline.ParseObject(buf[:0], line)
		if !ok {
			return r, false
		}
		var logVal, stream, ts []byte
		for _, m := range members {
			switch m.Key {
			case "log":
				logVal = m.Val
			case "stream":
				stream = m.Val
			case "time":
				ts = m.Val
			}
		}
		if len(logVal) < 2 || logVal[0] != '"' {
			return r, false
		}
		text := pipeline.AppendUnescaped(make([]byte, 0, len(logVal)-2), logVal[1:len(logVal)-1])
		// Docker splits lines longer than 16 KiB; only the last part ends
		// with the newline.
		r.partial = !bytes.HasSuffix(text, []byte{'\n'})
		r.text = bytes.TrimSuffix(bytes.TrimSuffix(text, []byte{'\n'}), []byte{'\r'})
		r.stream = dockerStream(stream)
		if len(ts) >= 2 && ts[0] == '"' {
			r.time, _ = time.Parse(time.RFC3339Nano, string(ts[1:len(ts)-1]))
		}
		return r, true
	case FormatCRI:
		// 2026-11-26T10:00:00.123456789Z stdout F the message
		f := bytes.SplitN(line, []byte{' '}, 4)
		if len(f) < 3 {
			return r, false
		}
		t, err := time.Parse(time.RFC3339Nano, string(f[0]))
		if err != nil {
			return r, false
		}
		switch string(f[2]) {
		case "P":
			r.partial = true
		case "F":
		default:
			return r, false
		}
		r.time, r.stream = t, string(f[1])
		if len(f) == 4 {
			r.text = f[3]
		}
		return r, true
	}
	return r, false
}

// dockerStream is the stream of a json-file line without allocating for
// the two streams there are.
func dockerStream(v []byte) string {
	switch string(v) {
	case `"stdout"`:
		return "stdout"
	case `"stderr"`:
		return "stderr"
	case "", "null":
		return ""
	}
	if len(v) >= 2 && v[0] == '"' {
		return string(pipeline.AppendUnescaped(nil, v[1:len(v)-1]))
	}
	return string(v)
}

// PathFields derives Kubernetes and container metadata from where a log
// file lives, as ECS / Filebeat-style fields:
//
//	/var/log/pods/NAMESPACE_POD_UID/CONTAINER/N.log
//	/var/log/containers/POD_NAMESPACE_CONTAINER-ID.log
//	/var/lib/docker/containers/ID/ID-json.log
func PathFields(path string) map[string]string {
	clean := filepath.ToSlash(filepath.Clean(path))
	parts := strings.Split(clean, "/")
	out := map[string]string{}
	for i, p := range parts {
		switch {
		case p == "pods" && i > 0 && parts[i-1] == "log" && i+3 < len(parts):
			// pods/NS_POD_UID/CONTAINER/N.log
			meta := strings.SplitN(parts[i+1], "_", 3)
			if len(meta) == 3 {
				out["kubernetes.namespace"] = meta[0]
				out["kubernetes.pod.name"] = meta[1]
				out["kubernetes.pod.uid"] = meta[2]
				out["kubernetes.container.name"] = parts[i+2]
			}
		case p == "containers" && i > 0 && parts[i-1] == "log" && i+1 < len(parts):
			// containers/POD_NS_CONTAINER-ID.log (the id is 64 hex digits)
			name := strings.TrimSuffix(parts[i+1], ".log")
			meta := strings.SplitN(name, "_", 3)
			if len(meta) == 3 {
				out["kubernetes.pod.name"] = meta[0]
				out["kubernetes.namespace"] = meta[1]
				c := meta[2]
				if j := strings.LastIndexByte(c, '-'); j > 0 && len(c)-j-1 == 64 {
					out["kubernetes.container.name"] = c[:j]
					out["container.id"] = c[j+1:]
				} else {
					out["kubernetes.container.name"] = c
				}
			}
		case p == "containers" && i > 0 && parts[i-1] == "docker" && i+2 < len(parts):
			// docker/containers/ID/ID-json.log, beside the container's
			// config.v2.json with its name and image
			if strings.HasPrefix(parts[i+2], parts[i+1]) {
				out["container.id"] = parts[i+1]
				dockerConfigFields(filepath.Join(filepath.Dir(path), "config.v2.json"), out)
			}
		}
	}
	return out
}

// ValidateFormat checks a format name.
func ValidateFormat(prefix, f string) error {
	switch f {
	case "", FormatRaw, FormatDocker, FormatCRI, FormatAuto:
		return nil
	}
	return fmt.Errorf("%s.format: %q is not raw, docker, cri or auto", prefix, f)
}

// dockerConfigFields adds container.name and container.image.name from a
// Docker container's config.v2.json, when it can be read (the shipper then
// runs where Docker's state is, as a DaemonSet mounting it does).
func dockerConfigFields(path string, out map[string]string) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 4<<20 {
		return
	}
	if name := strings.TrimPrefix(gjson.GetBytes(b, "Name").String(), "/"); name != "" {
		out["container.name"] = name
	}
	if img := gjson.GetBytes(b, "Config.Image").String(); img != "" {
		out["container.image.name"] = img
	}
}
