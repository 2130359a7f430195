package buffer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logweave/logweave/buffer"
	"github.com/logweave/logweave/internal/smallfs"
)

func open(t *testing.T, dir string, seg, max int64) *buffer.Buffer {
	t.Helper()
	b, err := buffer.Open(buffer.Options{Path: dir, SegmentBytes: seg, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func recs(from, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("record-%06d", from+i))
	}
	return out
}

// readAll reads until n records were returned, committing after each read
// when commit is set.
func readAll(t *testing.T, b *buffer.Buffer, n int, commit bool) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		rs, pos, err := b.Read(ctx, min(100, n-len(got)), 4096)
		if err != nil {
			t.Fatalf("after %d records: %v", len(got), err)
		}
		for _, r := range rs {
			got = append(got, string(r))
		}
		if commit {
			if err := b.Commit(pos); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

func checkSeq(t *testing.T, got []string, from int) {
	t.Helper()
	for i, g := range got {
		if want := fmt.Sprintf("record-%06d", from+i); g != want {
			t.Fatalf("record %d: got %s want %s", i, g, want)
		}
	}
}

func TestAppendReadCommitAcrossSegmentsAndRestart(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, 1024, 1<<20)
	for i := 0; i < 50; i++ {
		if err := b.Append(recs(i*10, 10)); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, b, 300, true)
	checkSeq(t, got, 0)
	// Read 100 more without committing, then restart: they come again.
	checkSeq(t, readAll(t, b, 100, false), 300)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(t, dir, 1024, 1<<20)
	defer b.Close()
	checkSeq(t, readAll(t, b, 200, true), 300)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) > 2 {
		t.Fatalf("consumed segments not deleted: %d left", len(segs))
	}
	if st := b.Stats(); st.Pending != 0 {
		t.Fatalf("pending %d after reading everything", st.Pending)
	}
}

func TestTornTailIsCutAtOpen(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, 1<<20, 1<<20)
	if err := b.Append(recs(0, 5)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{40, 0, 0, 0, 1, 2, 3, 4, 'p', 'a', 'r'}) // a frame cut short by a crash
	f.Close()

	b = open(t, dir, 1<<20, 1<<20)
	defer b.Close()
	if err := b.Append(recs(5, 5)); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, readAll(t, b, 10, true), 0)
}

func TestFullThenDrained(t *testing.T) {
	b := open(t, t.TempDir(), 256, 1024)
	defer b.Close()
	var err error
	n := 0
	for ; n < 1000; n++ {
		if err = b.Append(recs(n, 1)); err != nil {
			break
		}
	}
	if !errors.Is(err, buffer.ErrFull) {
		t.Fatalf("want ErrFull, got %v after %d", err, n)
	}
	checkSeq(t, readAll(t, b, n, true), 0)
	if err := b.Append(recs(n, 1)); err != nil {
		t.Fatalf("append after drain: %v", err)
	}
}

// A buffer whose one segment is as large as max_bytes: once everything in
// it is delivered, the segment is let go and appends go on (the segment
// being written is never deleted, so it used to hold the buffer full for
// good).
func TestFullOneSegmentThenDrained(t *testing.T) {
	b := open(t, t.TempDir(), 1024, 1024)
	defer b.Close()
	for round := range 3 {
		var err error
		n := 0
		for ; n < 1000; n++ {
			if err = b.Append(recs(n, 1)); err != nil {
				break
			}
		}
		if !errors.Is(err, buffer.ErrFull) || n < 5 {
			t.Fatalf("round %d: want ErrFull after some appends, got %v after %d", round, err, n)
		}
		checkSeq(t, readAll(t, b, n, true), 0)
	}
}

func TestConcurrentAppendersOneReader(t *testing.T) {
	b := open(t, t.TempDir(), 4096, 64<<20)
	defer b.Close()
	const writers, per = 4, 250
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := b.Append([][]byte{[]byte(fmt.Sprintf("w%d-%d", w, i))}); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	got := readAll(t, b, writers*per, true)
	wg.Wait()
	seen := map[string]bool{}
	next := make([]int, writers)
	for _, g := range got {
		if seen[g] {
			t.Fatalf("duplicate %s", g)
		}
		seen[g] = true
		var w, i int
		fmt.Sscanf(g, "w%d-%d", &w, &i)
		if i != next[w] {
			t.Fatalf("writer %d out of order: got %d want %d", w, i, next[w])
		}
		next[w]++
	}
}

func TestReadWaitsAndHonoursContext(t *testing.T) {
	b := open(t, t.TempDir(), 1<<20, 1<<20)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := b.Read(ctx, 10, 1024); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		b.Append(recs(0, 1))
	}()
	checkSeq(t, readAll(t, b, 1, true), 0)
}

func TestLargeRecordBiggerThanReadSize(t *testing.T) {
	b := open(t, t.TempDir(), 1<<20, 1<<22)
	defer b.Close()
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	if err := b.Append([][]byte{[]byte("small"), big, []byte("after")}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, b, 3, true)
	if got[0] != "small" || got[1] != string(big) || got[2] != "after" {
		t.Fatalf("got lengths %d %d %d", len(got[0]), len(got[1]), len(got[2]))
	}
}

// A completely full disk: appends fail with ErrFull (so ingest answers
// 429), the buffer says so, and delivering what it holds frees the space:
// the commit itself needs none. Then it accepts again, without a restart.
func TestDiskFullDrainsAndRecovers(t *testing.T) {
	dir := smallfs.Mount(t, 256<<10)
	b := open(t, dir, 64<<10, 1<<30) // max_bytes far above what the disk holds
	defer b.Close()
	rec := [][]byte{bytes.Repeat([]byte("x"), 1000)}
	n := 0
	var err error
	for ; n < 10000; n++ {
		if err = b.Append(rec); err != nil {
			break
		}
	}
	if !errors.Is(err, buffer.ErrFull) || !buffer.IsDiskFull(err) {
		t.Fatalf("after %d appends: %v, want ErrFull for a full disk", n, err)
	}
	if b.Stats().DiskFull == nil {
		t.Fatal("Stats does not say the disk is full")
	}
	got := readAll(t, b, n, true) // every read committed: must not fail
	if len(got) != n {
		t.Fatalf("read %d of %d", len(got), n)
	}
	if err := b.Append(recs(0, 1)); err != nil {
		t.Fatalf("append after draining: %v", err)
	}
	if st := b.Stats(); st.DiskFull != nil || st.Bytes > 64<<10 {
		t.Fatalf("after draining: %+v", st)
	}
	checkSeq(t, readAll(t, b, 1, true), 0)

	// And again while other files fill the disk: refused until they go.
	// (The segment's last page may still take a few records.)
	filler := smallfs.Fill(t, dir)
	taken := 0
	for ; taken < 10; taken++ {
		if err = b.Append(rec); err != nil {
			break
		}
	}
	if !errors.Is(err, buffer.ErrFull) || b.Stats().DiskFull == nil {
		t.Fatalf("append on a disk filled by others: %v", err)
	}
	os.Remove(filler)
	if err := b.Append(recs(1, 1)); err != nil {
		t.Fatalf("append once space is back: %v", err)
	}
	if b.Stats().DiskFull != nil {
		t.Fatal("still reported full")
	}
	got = readAll(t, b, taken+1, true)
	checkSeq(t, got[taken:], 1)
	b.Close()

	// What was committed stays committed across a restart.
	b2 := open(t, dir, 64<<10, 1<<30)
	defer b2.Close()
	if st := b2.Stats(); st.Pending != 0 {
		t.Fatalf("after reopen %d bytes pending, want 0", st.Pending)
	}
}

// Records framed in place read back as appended; a Reader reuses its
// storage; a record over MaxRecordBytes fails the whole append.
func TestFramesAndReader(t *testing.T) {
	b := open(t, t.TempDir(), 1<<20, 8<<20)
	var f buffer.Frames
	for i := range 100 {
		f.Close(fmt.Appendf(f.Open(), "record %d", i))
	}
	if err := b.AppendFrames(&f); err != nil {
		t.Fatal(err)
	}
	rd := b.NewReader()
	var got []string
	var first *byte
	for len(got) < 100 {
		recs, pos, err := rd.Read(context.Background(), 30, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = &recs[0][0]
		} else if &recs[0][0] != first {
			t.Fatal("the reader did not read into the storage it read into before")
		}
		for _, r := range recs {
			got = append(got, string(r))
		}
		if err := b.Commit(pos); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range got {
		if r != fmt.Sprintf("record %d", i) {
			t.Fatalf("record %d read as %q", i, r)
		}
	}
	f.Reset()
	f.Close(append(f.Open(), make([]byte, buffer.MaxRecordBytes+1)...))
	if err := b.AppendFrames(&f); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized record: %v", err)
	}
}
