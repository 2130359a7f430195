package pipeline_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/logweave/logweave/pipeline"
)

func frameCorpus() []pipeline.Envelope {
	at := time.Date(2026, 12, 6, 4, 0, 0, 123456789, time.UTC)
	return []pipeline.Envelope{
		{ID: "a", ReadAt: at, Host: "node-1", Path: "/var/log/a.log", Offset: 0, Line: []byte(`{"msg":"q\"uote","n":1}`)},
		{ID: "b", ReadAt: at, Host: "node-1", Path: "/var/log/a.log", Offset: 24, Line: []byte("plain\ttext with \\ and \x00 and é")},
		{ID: "c", ReadAt: at, Host: "node-1", Path: "/var/log/b.log", Offset: 1 << 40, Fields: []byte(`{"stream":"stderr"}`), Line: []byte{}},
		{ID: "d", Host: "node-1", Path: "/var/log/b.log", Offset: 7, Fields: []byte(`{"stream":"stderr"}`), Line: []byte("no time")},
		{ID: "e", ReadAt: at, Host: "node-2", Format: "gelf", Line: []byte(`{"version":"1.1","short_message":"x"}`)},
		{ID: "f", ReadAt: at.Add(-time.Hour), Line: []byte("nothing else"), Offset: -1},
	}
}

func framed(in []pipeline.Envelope) []byte {
	var w pipeline.FrameWriter
	var body []byte
	for i := range in {
		body = w.Append(body, &in[i])
	}
	return body
}

// What the shipper frames, the collector reads back byte for byte: the
// lines as they were read, with their origin.
func TestFramesRoundTrip(t *testing.T) {
	in := frameCorpus()
	body := framed(in)
	if n, err := pipeline.CountFrames(body); err != nil || n != len(in) {
		t.Fatalf("CountFrames = %d, %v; want %d", n, err, len(in))
	}
	r, err := pipeline.NewFrameReader(body)
	if err != nil {
		t.Fatal(err)
	}
	var e pipeline.Envelope
	for i := range in {
		if !r.Next(&e) {
			t.Fatalf("record %d: %v", i, r.Err())
		}
		want := in[i]
		if len(want.Line) == 0 && len(e.Line) == 0 {
			want.Line = e.Line // empty either way
		}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, e, want)
		}
	}
	if r.Next(&e) || r.Err() != nil {
		t.Fatalf("after the last record: %v", r.Err())
	}

	// A second batch from the same writer names its origin again.
	var w pipeline.FrameWriter
	w.Append(nil, &in[0])
	w.Reset()
	r, _ = pipeline.NewFrameReader(w.Append(nil, &in[1]))
	if !r.Next(&e) || e.Host != "node-1" || e.Path != "/var/log/a.log" {
		t.Fatalf("second batch: %+v %v", e, r.Err())
	}
}

// A body cut anywhere, or with a byte changed, is refused with an error,
// never a panic or a record made up.
func TestFramesMalformed(t *testing.T) {
	in := frameCorpus()
	body := framed(in)
	for cut := 0; cut < len(body); cut++ {
		n, err := pipeline.CountFrames(body[:cut])
		if cut < 4 {
			if !errors.Is(err, pipeline.ErrBadFrames) {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			continue
		}
		if err == nil && n == len(in) {
			t.Fatalf("cut at %d: all %d records counted", cut, n)
		}
	}
	for i := range body {
		bad := bytes.Clone(body)
		bad[i] ^= 0xff
		pipeline.CountFrames(bad) // must not panic
	}
	if _, err := pipeline.CountFrames([]byte("{\"line\":\"x\"}\n")); !errors.Is(err, pipeline.ErrBadFrames) {
		t.Fatalf("NDJSON taken as frames: %v", err)
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(framed(frameCorpus()))
	f.Add([]byte("LWF1\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := pipeline.CountFrames(b)
		r, rerr := pipeline.NewFrameReader(b)
		if rerr != nil {
			return
		}
		var e pipeline.Envelope
		got := 0
		for r.Next(&e) {
			got++
		}
		if got != n || (err == nil) != (r.Err() == nil) {
			t.Fatalf("CountFrames %d %v, reader %d %v", n, err, got, r.Err())
		}
	})
}
