// Package buffer is the collector's embedded disk buffer, used when no Kafka
// is configured. Ingest appends records and gets an answer only after they
// are fsynced; the indexer reads them in order and commits a position once
// the output accepted them. Unread data survives a restart or a crash.
//
// On disk: numbered segment files (00000000000000000001.seg, ...) of frames
// [u32 length][u32 CRC-32C][payload], and a cursor file holding the committed
// read position. A torn frame at the tail of the last segment (a crash
// mid-write) is cut off at open; segments before the cursor are deleted.
package buffer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/logweave/logweave/internal/fsutil"
)

// ErrFull is returned by Append when the buffer holds MaxBytes already; the
// ingest answers 429 so that shippers back off and retry.
var ErrFull = errors.New("buffer: full")

// ErrTooLarge is returned by Append for records that could never fit:
// more bytes together than MaxBytes.
var ErrTooLarge = errors.New("buffer: larger than max_bytes")

// IsDiskFull tells a write error of a full disk (or an exhausted quota).
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("buffer: closed")

const (
	frameHeader = 8
	// MaxRecordBytes bounds one record, so a corrupt length is recognised.
	MaxRecordBytes = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options configure a Buffer. Zero values take the defaults.
type Options struct {
	Path         string // directory, created if missing
	SegmentBytes int64  // a segment is closed once it is this large; default 64 MiB
	MaxBytes     int64  // Append fails with ErrFull beyond this; default 1 GiB
	Logger       *slog.Logger
}

// Position is a place in the buffer: a segment and a byte offset in it.
type Position struct {
	Seg uint64 `json:"segment"`
	Off int64  `json:"offset"`
}

func (p Position) less(q Position) bool {
	return p.Seg < q.Seg || p.Seg == q.Seg && p.Off < q.Off
}

// Buffer is a durable FIFO of records with one reader.
type Buffer struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	closed  bool
	sizes   map[uint64]int64 // segment id -> written size
	w       *os.File
	wID     uint64
	total   int64    // bytes in segments still on disk
	written Position // end of written data
	read    Position // next position to read
	cursor  Position // committed position
	notify  chan struct{}

	synced Position // end of fsynced data; readers see only this far

	syncMu sync.Mutex // serialises fsyncs

	rf   *os.File
	rfID uint64

	commitMu sync.Mutex // serialises commits; Close takes it to close cf
	cf       *os.File   // cursor.json, overwritten in place
	diskFull error      // the last append's disk-full error, nil once one succeeds
}

// cursorBytes is the size cursor.json is kept at: a JSON position padded
// with spaces. It is overwritten in place, so committing needs no new disk
// space: a full disk can always be drained.
const cursorBytes = 128

// Open opens or creates the buffer at opts.Path, recovering from a crash.
func Open(opts Options) (*Buffer, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Path, 0o700); err != nil {
		return nil, err
	}
	b := &Buffer{opts: opts, log: opts.Logger, sizes: map[uint64]int64{}, notify: make(chan struct{})}
	ids, err := b.listSegments()
	if err != nil {
		return nil, err
	}
	if err := b.loadCursor(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if id < b.cursor.Seg {
			if err := os.Remove(b.segPath(id)); err != nil {
				return nil, err
			}
			continue
		}
		fi, err := os.Stat(b.segPath(id))
		if err != nil {
			return nil, err
		}
		b.sizes[id] = fi.Size()
		b.total += fi.Size()
		b.wID = id
	}
	if b.wID == 0 {
		b.wID = max(b.cursor.Seg, 1)
		b.sizes[b.wID] = 0
	}
	// Cut a torn tail off the last segment.
	valid, err := b.validEnd(b.wID)
	if err != nil {
		return nil, err
	}
	if valid < b.sizes[b.wID] {
		b.log.Warn("buffer: truncating torn tail after crash", "segment", b.wID, "from", b.sizes[b.wID], "to", valid)
		if err := os.Truncate(b.segPath(b.wID), valid); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		b.total -= b.sizes[b.wID] - valid
		b.sizes[b.wID] = valid
	}
	b.w, err = os.OpenFile(b.segPath(b.wID), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	b.written = Position{b.wID, b.sizes[b.wID]}
	b.synced = b.written
	if b.cursor.Seg == 0 {
		b.cursor = Position{Seg: b.firstSegment()}
	}
	if b.written.less(b.cursor) {
		b.cursor = b.written
	}
	b.read = b.cursor
	if err := b.openCursor(); err != nil {
		b.w.Close()
		return nil, err
	}
	return b, nil
}

// openCursor makes cursor.json its fixed size (written whole, atomically,
// while there is space) and keeps it open for in-place commits.
func (b *Buffer) openCursor() error {
	if fi, err := os.Stat(b.cursorPath()); err != nil || fi.Size() != cursorBytes {
		if err := fsutil.WriteFileAtomic(b.cursorPath(), cursorRecord(b.cursor)); err != nil {
			return fmt.Errorf("buffer: cursor: %w", err)
		}
	}
	f, err := os.OpenFile(b.cursorPath(), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("buffer: cursor: %w", err)
	}
	b.cf = f
	return nil
}

func cursorRecord(p Position) []byte {
	data, _ := json.Marshal(p)
	rec := make([]byte, cursorBytes)
	copy(rec, data)
	for i := len(data); i < cursorBytes-1; i++ {
		rec[i] = ' '
	}
	rec[cursorBytes-1] = '\n'
	return rec
}

func (b *Buffer) firstSegment() uint64 {
	first := b.wID
	for id := range b.sizes {
		first = min(first, id)
	}
	return first
}

func (b *Buffer) segPath(id uint64) string {
	return filepath.Join(b.opts.Path, fmt.Sprintf("%020d.seg", id))
}

func (b *Buffer) listSegments() ([]uint64, error) {
	entries, err := os.ReadDir(b.opts.Path)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil || id == 0 {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

func (b *Buffer) cursorPath() string { return filepath.Join(b.opts.Path, "cursor.json") }

func (b *Buffer) loadCursor() error {
	data, err := os.ReadFile(b.cursorPath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &b.cursor); err != nil {
		// Unreadable (a torn in-place write): start again from the first
		// segment still on disk. Delivered records are delivered again and
		// overwrite themselves by id; nothing is lost.
		b.log.Error("buffer: cursor unreadable; reading from the oldest segment again", "file", b.cursorPath(), "error", err)
		b.cursor = Position{}
	}
	return nil
}

// validEnd scans a segment and returns the offset after its last whole frame.
func (b *Buffer) validEnd(id uint64) (int64, error) {
	f, err := os.Open(b.segPath(id))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var off int64
	var hdr [frameHeader]byte
	var payload []byte
	for {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return off, nil
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		if n > MaxRecordBytes {
			return off, nil
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := f.ReadAt(payload, off+frameHeader); err != nil {
			return off, nil
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return off, nil
		}
		off += frameHeader + int64(n)
	}
}

// Frames are records framed for AppendFrames, built in place: the caller
// appends each record's bytes straight after its frame header, so a batch
// is not copied again to be framed. The zero value is empty; Reset reuses
// it.
type Frames struct {
	buf   []byte
	start int
	err   error
}

// Open starts a record: append its bytes to the returned slice and hand
// the result to Close.
func (f *Frames) Open() []byte {
	f.start = len(f.buf)
	return append(f.buf, 0, 0, 0, 0, 0, 0, 0, 0)
}

// Close ends the record started by Open; b is what Open returned with the
// record's bytes appended.
func (f *Frames) Close(b []byte) {
	rec := b[f.start+frameHeader:]
	if len(rec) > MaxRecordBytes && f.err == nil {
		f.err = fmt.Errorf("buffer: record of %d bytes exceeds %d", len(rec), MaxRecordBytes)
	}
	binary.LittleEndian.PutUint32(b[f.start:], uint32(len(rec)))
	binary.LittleEndian.PutUint32(b[f.start+4:], crc32.Checksum(rec, crcTable))
	f.buf = b
}

// Len is the bytes framed so far.
func (f *Frames) Len() int { return len(f.buf) }

// Reset empties f, keeping its storage.
func (f *Frames) Reset() { f.buf, f.err = f.buf[:0], nil }

// Append writes records and returns once they are on stable storage.
// Concurrent appends share one fsync (group commit).
func (b *Buffer) Append(records [][]byte) error {
	var f Frames
	for _, r := range records {
		f.Close(append(f.Open(), r...))
	}
	return b.AppendFrames(&f)
}

// AppendFrames is Append of records framed in place.
func (b *Buffer) AppendFrames(f *Frames) error {
	if f.err != nil {
		return f.err
	}
	frames, size := f.buf, int64(len(f.buf))
	if size > b.opts.MaxBytes {
		// Even an empty buffer cannot take it: waiting would not help.
		return fmt.Errorf("%w: %d bytes in one append, buffer.max_bytes %d", ErrTooLarge, size, b.opts.MaxBytes)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.total+size > b.opts.MaxBytes {
		b.mu.Unlock()
		return ErrFull
	}
	if b.sizes[b.wID] > 0 && b.sizes[b.wID]+size > b.opts.SegmentBytes {
		if err := b.rotateLocked(); err != nil {
			err = b.writeFailedLocked(err)
			b.mu.Unlock()
			return err
		}
	}
	if _, err := b.w.Write(frames); err != nil {
		// Leave no partial frame behind for the reader to trip on.
		_ = b.w.Truncate(b.sizes[b.wID])
		err = b.writeFailedLocked(err)
		b.mu.Unlock()
		return fmt.Errorf("buffer: write: %w", err)
	}
	if b.diskFull != nil {
		b.diskFull = nil
		b.log.Info("buffer: disk space is back; accepting again")
	}
	b.sizes[b.wID] += size
	b.total += size
	b.written = Position{b.wID, b.sizes[b.wID]}
	mine := b.written
	b.mu.Unlock()

	// Group commit: whoever holds syncMu fsyncs everything written so far.
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	b.mu.Lock()
	if !b.synced.less(mine) {
		b.mu.Unlock()
		return nil // another append's fsync covered ours
	}
	upto := b.written
	w := b.w // if rotated since, the old segment was synced on rotation
	b.mu.Unlock()
	if err := w.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		// ErrClosed: a rotation synced and closed the segment under us.
		b.mu.Lock()
		err = b.writeFailedLocked(err)
		b.mu.Unlock()
		return fmt.Errorf("buffer: fsync: %w", err)
	}
	b.mu.Lock()
	if b.synced.less(upto) {
		b.synced = upto
	}
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
	return nil
}

// writeFailedLocked notes a disk-full error (for Stats and /readyz) and
// turns it into ErrFull, so that ingest answers 429 and senders retry once
// the indexer has freed space; other errors pass as they are.
func (b *Buffer) writeFailedLocked(err error) error {
	if !IsDiskFull(err) {
		return err
	}
	if b.diskFull == nil {
		b.log.Error("buffer: disk full; refusing new events until delivered ones free space", "path", b.opts.Path, "error", err)
	}
	b.diskFull = err
	return fmt.Errorf("%w: %w", ErrFull, err)
}

// rotateLocked starts the next segment. The new file is opened before the
// old one is closed, so a failure (no space for it) leaves the buffer
// writing where it was.
func (b *Buffer) rotateLocked() error {
	f, err := os.OpenFile(b.segPath(b.wID+1), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := b.w.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	b.w.Close()
	b.wID++
	b.w = f
	b.sizes[b.wID] = 0
	return fsutil.SyncDir(b.opts.Path)
}

// Read returns up to maxRecords records (and about maxBytes) from the read
// position, waiting until at least one is durable or ctx ends. The records
// stay in the buffer until Commit is called with the returned position.
func (b *Buffer) Read(ctx context.Context, maxRecords, maxBytes int) ([][]byte, Position, error) {
	var r reuse
	return b.readInto(ctx, &r, maxRecords, maxBytes)
}

// Reader reads the buffer (as Read does) into storage it reuses from batch
// to batch: the records of one Read are valid until the next. A reader
// that lets go of a batch before reading the next saves allocating each.
type Reader struct {
	b *Buffer
	r reuse
}

// reuse is the storage a read goes into: the bytes and the records' slices.
type reuse struct {
	data []byte
	recs [][]byte
}

// NewReader returns a Reader of b.
func (b *Buffer) NewReader() *Reader { return &Reader{b: b} }

// Commit is Buffer.Commit.
func (r *Reader) Commit(pos Position) error { return r.b.Commit(pos) }

// Read is Buffer.Read into the reader's storage.
func (r *Reader) Read(ctx context.Context, maxRecords, maxBytes int) ([][]byte, Position, error) {
	return r.b.readInto(ctx, &r.r, maxRecords, maxBytes)
}

func (b *Buffer) readInto(ctx context.Context, scratch *reuse, maxRecords, maxBytes int) ([][]byte, Position, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			if b.rf != nil { // the reader owns its file
				b.rf.Close()
				b.rf = nil
			}
			return nil, Position{}, ErrClosed
		}
		end := b.synced
		if !b.read.less(end) {
			ch := b.notify
			b.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, Position{}, ctx.Err()
			case <-ch:
			}
			continue
		}
		pos := b.read
		segEnd := b.sizes[pos.Seg]
		if pos.Seg == end.Seg {
			segEnd = end.Off
		}
		b.mu.Unlock()

		if pos.Off >= segEnd {
			// Finished this segment; move on to the next one.
			b.mu.Lock()
			b.read = Position{Seg: pos.Seg + 1}
			b.mu.Unlock()
			continue
		}
		recs, next, err := b.readSegment(pos, segEnd, maxRecords, maxBytes, scratch)
		if err != nil {
			return nil, Position{}, err
		}
		b.mu.Lock()
		b.read = next
		b.mu.Unlock()
		if len(recs) > 0 {
			return recs, next, nil
		}
	}
}

func (b *Buffer) readSegment(pos Position, end int64, maxRecords, maxBytes int, scratch *reuse) ([][]byte, Position, error) {
	if b.rf == nil || b.rfID != pos.Seg {
		if b.rf != nil {
			b.rf.Close()
		}
		f, err := os.Open(b.segPath(pos.Seg))
		if err != nil {
			return nil, pos, fmt.Errorf("buffer: open segment: %w", err)
		}
		b.rf, b.rfID = f, pos.Seg
	}
	want := min(end-pos.Off, int64(max(maxBytes, frameHeader)))
	if int64(cap(scratch.data)) < want {
		// Doubled, up to what one read may take, not grown to each larger
		// want: a Reader near the written end wants a little more each
		// time (~23 MB allocated per million events, up to 4 MiB at a
		// time).
		scratch.data = make([]byte, max(want, min(2*int64(cap(scratch.data)), int64(max(maxBytes, frameHeader)))))
	}
	chunk := scratch.data[:want]
	if _, err := b.rf.ReadAt(chunk, pos.Off); err != nil && err != io.EOF {
		return nil, pos, fmt.Errorf("buffer: read: %w", err)
	}
	recs := scratch.recs[:0]
	defer func() { scratch.recs = recs[:0] }()
	off := 0
	for len(recs) < maxRecords {
		if len(chunk)-off < frameHeader {
			break
		}
		n := int(binary.LittleEndian.Uint32(chunk[off:]))
		sum := binary.LittleEndian.Uint32(chunk[off+4:])
		if n > MaxRecordBytes {
			return b.skipCorrupt(recs, pos, off)
		}
		if len(chunk)-off-frameHeader < n {
			if len(recs) == 0 {
				// One record larger than maxBytes: read it alone.
				big := make([]byte, n)
				if _, err := b.rf.ReadAt(big, pos.Off+frameHeader); err != nil {
					return nil, pos, fmt.Errorf("buffer: read: %w", err)
				}
				if crc32.Checksum(big, crcTable) != sum {
					return b.skipCorrupt(recs, pos, off)
				}
				return [][]byte{big}, Position{pos.Seg, pos.Off + frameHeader + int64(n)}, nil
			}
			break
		}
		payload := chunk[off+frameHeader : off+frameHeader+n]
		if crc32.Checksum(payload, crcTable) != sum {
			return b.skipCorrupt(recs, pos, off)
		}
		recs = append(recs, payload)
		off += frameHeader + n
	}
	return recs, Position{pos.Seg, pos.Off + int64(off)}, nil
}

// skipCorrupt handles a frame that fails its checksum in data that was
// fsynced (disk corruption): the rest of the segment cannot be framed, so it
// is skipped and the loss is logged loudly.
func (b *Buffer) skipCorrupt(recs [][]byte, pos Position, off int) ([][]byte, Position, error) {
	at := pos.Off + int64(off)
	b.mu.Lock()
	lost := b.sizes[pos.Seg] - at
	last := pos.Seg == b.wID
	b.mu.Unlock()
	if last {
		return nil, pos, fmt.Errorf("buffer: corrupt frame in segment %d at offset %d", pos.Seg, at)
	}
	b.log.Error("buffer: corrupt frame, skipping the rest of the segment", "segment", pos.Seg, "offset", at, "bytes_lost", lost)
	return recs, Position{Seg: pos.Seg + 1}, nil
}

// Commit records that everything before pos has been delivered. Segments
// wholly before pos are deleted first, and the cursor is overwritten in
// place, so a commit needs no free space and frees what it can: a full disk
// drains. When everything written is delivered and the disk is full, or
// the buffer half full, the segment being written is closed and deleted
// too.
func (b *Buffer) Commit(pos Position) error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	if err := b.freeConsumed(pos); err != nil {
		return err
	}
	b.mu.Lock()
	cursor := b.cursor
	b.mu.Unlock()
	if _, err := b.cf.WriteAt(cursorRecord(cursor), 0); err != nil {
		return fmt.Errorf("buffer: cursor: %w", err)
	}
	if err := b.cf.Sync(); err != nil {
		return fmt.Errorf("buffer: cursor: %w", err)
	}
	return nil
}

// freeConsumed moves the cursor to pos and deletes what is before it.
func (b *Buffer) freeConsumed(pos Position) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.cursor.less(pos) {
		b.cursor = pos
	}
	// Everything written is delivered and the disk is full, or the buffer
	// is half full with the segment being written (a segment as large as
	// max_bytes would otherwise hold it full for good): that segment is
	// closed, to be deleted below.
	if b.cursor == b.written && b.sizes[b.wID] > 0 && (b.diskFull != nil || 2*b.total >= b.opts.MaxBytes) {
		if err := b.rotateLocked(); err == nil {
			b.cursor = Position{Seg: b.wID}
			if !b.read.less(b.cursor) || b.read.Seg < b.wID {
				b.read = b.cursor
			}
			if b.synced.less(b.cursor) {
				b.synced = b.cursor
			}
		}
	}
	// Deleting before the cursor is written is safe: those segments were
	// delivered. A crash in between leaves a cursor in a deleted segment,
	// and reading goes on with the next one.
	for id, size := range b.sizes {
		if id < b.cursor.Seg && id != b.wID {
			if err := os.Remove(b.segPath(id)); err != nil && !os.IsNotExist(err) {
				return err
			}
			b.total -= size
			delete(b.sizes, id)
		}
	}
	return nil
}

// Stats describes the buffer for metrics.
type Stats struct {
	Bytes    int64 // on disk, including consumed data of live segments
	Pending  int64 // written but not committed
	Segments int
	MaxBytes int64
	DiskFull error // the disk-full error while appends fail for it
}

// Stats returns the current sizes.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var pending int64
	for id, size := range b.sizes {
		switch {
		case id > b.cursor.Seg:
			pending += size
		case id == b.cursor.Seg:
			pending += size - b.cursor.Off
		}
	}
	return Stats{Bytes: b.total, Pending: pending, Segments: len(b.sizes), MaxBytes: b.opts.MaxBytes, DiskFull: b.diskFull}
}

// Close releases the files. Data already appended stays on disk.
func (b *Buffer) Close() error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	close(b.notify)
	err := b.w.Sync()
	if cerr := b.w.Close(); err == nil {
		err = cerr
	}
	b.cf.Close()
	return err
}
