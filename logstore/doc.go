// Package logstore keeps every console's output, compressed, per console,
// readable with the standard zstd tools, and searchable by time.
//
// # Entry points
//
//	s, err := logstore.Open("/var/log/solgate", logstore.Options{})
//	w, err := s.Writer("node42")        // one per console
//	w.Write(consoleBytes)               // never blocks on the disk, never fails on it
//	w.Event(logstore.EventPower, "cycle by alice: ok")
//	lines, err := s.Tail("node42", 20)  // replay on attach, includes unflushed output
//	for rec, err := range s.Records(ctx, "node42", logstore.Query{Since: t0, Until: t1}) { ... }
//	for l, err := range s.Lines(ctx, "node42", logstore.Query{Last: 10, Follow: true}) { ... }
//	err = s.Grep(ctx, "node42", re, logstore.Query{Since: t0}, func(m logstore.Match) error { ... })
//	w.Stats(); s.Stats()                // drops, gaps, pending bytes, syncs
//	w.Close(); s.Close()
//
// A Store, its Writers and its readers are safe for concurrent use. Open
// with Options.ReadOnly to read a directory another process writes.
//
// # Files
//
// Each console has a folder LOG_DIR/<console>/ (mode 0750) of segments
// named by their start time in UTC, YYYYMMDDTHHMMSSZ.zst (mode 0640): the
// second of their first record, so a name never claims a later start than
// the records in the file (a rotation waits for output in a later second;
// only a clock set back behind the newest name forces a later one, with a
// warning). Anything else in the folder is ignored and reported once per
// file (Options.Warn, *StrayFileError), except names starting with '.',
// which are the store's own (temporary files of sealing).
// Console names must be safe path components (CheckConsoleName). A console
// has one Writer at a time, across processes too: one of LOG_DIR/.lock.00
// to .lock.3f carries a Linux open-file-description byte-range lock per
// console (file and offset hashed from its name), so a Store needs at most
// 64 descriptors for all its locks (the kernel's cost of taking a lock
// grows with the locks already on the file, hence more than one) and the
// kernel drops them when the process dies. A segment is a plain
// concatenation of zstd frames (RFC 8878):
//
//   - first, a skippable frame with magic 0x184D2A5C whose payload is JSON:
//     {"format":"solgate-log/1","console":"node42","start":"2026-11-23T10:00:00.000Z"}
//     plus "sealed":true once the segment is sealed;
//   - then data frames: ordinary zstd frames with content size and XXH64
//     checksum, each holding whole records (below);
//   - interleaved, time-index frames: skippable frames with magic
//     0x184D2A5D (IDs 0 and 0xE are avoided: pzstd and the seekable format
//     use them);
//   - after a repair, a skippable frame with magic 0x184D2A5B holding the
//     bytes of a frame a crash cut short (see below).
//
// zstdcat, zstdgrep, zstd -t and any zstd decoder skip the skippable
// frames and print the records, for live segments too: every frame is
// complete when written (one write(2) per flush).
//
// An index frame's payload is N entries of 40 bytes followed by a 16-byte
// trailer, all little-endian:
//
//	entry:   u64 offset of the first data frame covered (from file start)
//	         u64 offset just past the last data frame covered
//	         i64 earliest record time, Unix ms
//	         i64 latest record time, Unix ms
//	         u32 decompressed bytes covered
//	         u32 records covered
//	trailer: u32 N, u32 flags (bit 0: the entries cover every data frame
//	         of the file), u32 CRC-32C (Castagnoli) of the entries, "SGIX"
//
// The trailer lets a reader find an index frame that ends a file by reading
// the file's last 16 bytes. An index that fails its CRC, or does not match
// the frames it names, is ignored and the frames are walked instead.
//
// # Live and sealed segments
//
// The live segment is appended to by one Writer. Write only buffers; once
// the oldest buffered byte is FlushInterval (1 s) old, or FrameBytes (64
// KiB) are buffered, a flush worker compresses the buffer with one Encoder
// shared by the whole Store (EncodeAll; a per-console encoder would cost
// megabytes each) and appends it as one data frame. So a crash of the
// process loses at most about a second. Every IndexInterval (1 min), or once an entry covers
// 4 MiB, the same write also appends an index frame with one entry
// covering the data frames since the previous index frame. A Writer holds
// only its small pending buffer and the open live segment, which it closes
// after two quiet minutes (and reopens at the next output), so thousands
// of consoles cost a few KiB and at most one file descriptor each.
//
// At SegmentBytes (64 MiB) or SegmentAge (1 h) the live segment is
// rotated: closed with an index frame, and a new one started at the next
// output. A background maintainer (one per Store, one segment at a time)
// then seals the closed segment: it recompresses the records into frames
// of about SealFrameBytes (1 MiB, cut at line ends) and ends the file with
// one complete index frame (flag bit 0 set, one entry per frame), writing a
// temporary file that is fsynced and renamed over the segment. One-second
// frames of a quiet console barely compress; sealed ones compress like
// zstd -3 of the whole text. Segments that are damaged are left as they are.
//
// Retention (the same maintainer, after each rotation and hourly) deletes a
// console's oldest segments while they are older than RetainAge or the
// console holds more than RetainBytes. The live segment is never deleted.
//
// # Records
//
// Decompressed, a segment is text: one record per line, as zstdcat shows:
//
//	2026-11-23T10:01:02.123Z | [    0.000000] Linux version 6.1.0-13-amd64
//	2026-11-23T10:01:02.124Z | \e[0;32m  OK  \e[0m] Started Journal Service.
//	2026-11-23T10:01:03.002Z ~ login:
//	2026-11-23T10:01:05.120Z | root
//	2026-11-23T10:01:06.000Z ! attach alice (rw) from 10.0.0.5
//	2026-11-23T10:01:09.500Z ! gap 1234 bytes lost until 2026-11-23T10:01:09.400Z: no space left on device
//
// Each record is a 24-byte UTC timestamp with milliseconds, a space, a
// one-byte marker, a space, an escaped payload, and a line feed:
//
//	|  console output whose raw bytes end with "\r\n" (a serial console's line end)
//	:  console output whose raw bytes end with "\n"
//	~  console output with no line end: the line continues in the next
//	   output record (a prompt, a line cut by a flush, or 4 KiB without "\n")
//	!  an event: a kind ([a-z][a-z0-9-]*, see EventKind), a space, text
//
// The payload is the raw bytes with the line end removed, escaped so every
// record is one line of printable UTF-8 that is safe to show on a
// terminal: printable ASCII, TAB and valid UTF-8 (except the C1 controls
// U+0080-U+009F) stay as they are; "\" becomes \\, ESC \e, CR \r, LF \n,
// BS \b, BEL \a, NUL \0, and every other byte \xHH (lower-case hex). The
// timestamp of an output record is when its first byte arrived.
//
// The original byte stream is therefore exactly the concatenation of the
// unescaped payloads of the output records, each followed by "\r\n" for
// |, "\n" for :, and nothing for ~ (solgate log --raw). Escape sequences,
// CR, invalid UTF-8, NUL, and lines without a line end all survive. A line
// as a person sees it is a run of output records whose all but last are
// ~; an event ends such a run (Lines, Tail).
//
// # Crashes and full disks
//
// A Writer opening a console repairs the newest segment if it does not end
// in an index frame: it walks the frames (reading headers only) and
// salvages what the decoder still gets out of a torn last frame (complete
// records, and the cut last one as a ~ record). Nothing is cut before what
// replaces it is on disk: the salvage, with a gap event, is appended after
// the torn bytes and fdatasynced, then the torn frame's first 8 bytes are
// overwritten with a skippable frame header (0x184D2A5B) covering it, then
// an index frame is appended. On a full disk the file is therefore left
// exactly as it was, the Writer starts a new segment, and the torn one is
// sealed later, with its salvage, once there is room (sealing writes a
// copy; a failed seal is retried at each retention pass). A torn tail
// with nothing to salvage is simply cut. Damage in the middle of a segment
// is left alone: readers skip the damaged frame with a *CorruptError and
// read on from the next intact frame.
//
// When a write fails (disk full, I/O error, folder removed), the file is
// cut back to its last complete frame, the console bytes of that flush are
// counted as dropped (WriterStats) and the Writer keeps accepting; the
// first successful write after that starts with a gap event giving the
// count and reason. The same happens when a console has MaxPending bytes
// buffered because the disk is too slow, or when all the Store's Writers
// together hold MaxPendingTotal (256 MiB) of buffers (their capacity, not
// just the bytes in use), so that a stalled disk under 10,000 consoles
// costs at most about that much memory (first come, first served: the
// consoles that print the most fill it). Write never waits for the disk.
//
// # Power loss
//
// Every SyncInterval (5 s) a background goroutine of the Store fdatasyncs
// the live segments written since its previous round (a few at a time,
// never on a Write or flush goroutine), and fsyncs the folders of segments
// created since, with their first data. When more than 64 segments were
// written, it syncs the log directory's file system instead (syncfs(2)):
// one journal commit rather than thousands (this also flushes other
// programs' files on that file system). Segments are fsynced when rotated,
// sealed copies before they are renamed, and the folder after a seal's
// rename and after retention removes a segment. Writer.Close fdatasyncs
// its segment; Store.Close with more than 64 Writers syncs the file system
// once instead. So a power loss or kernel crash loses the output of
// about the last SyncInterval plus FlushInterval (more if the disk cannot
// keep up with the syncs), and never a segment that was complete before
// that; a frame being written when the power went is a torn tail, which
// the next start repairs.
//
// # Reading
//
// Readers need no lock and may run in other processes. A range query
// selects segments by their names, then frames through the index entries
// (a sealed segment's complete index is read from the file's end; a live
// segment's index frames are found by walking frame headers), and
// decompresses only what may hold records in range; data frames after the
// last index frame are decompressed to be checked. Follow polls the newest
// segment for new frames and moves to a newer segment after draining the
// old one; it keeps segments open, so a rename by sealing does not
// disturb it.
//
// Damage is reported as a *CorruptError naming the file and offset, after
// which reading goes on: a damaged frame, a segment that cannot be opened
// (its mode, say), and a segment whose end is damaged: a header cut off, a
// last frame cut short (the records that can be salvaged from it are read
// first, except by Follow on the newest segment, whose Writer salvages it
// when it restarts), a sealed segment without its closing index. The
// newest segment of a console whose Writer is alive (in this Store, or
// holding the console's lock in another process) may end in a frame being
// written: that is not damage, unless the file has not changed for a
// minute.
//
// Grep searches in parallel across chunks and keeps the output in order.
// It matches a regexp against each line's plain text (escape sequences
// stripped by package logstore/ansi, CR and BS applied). When every match
// must contain one of a few literals (also case-insensitively), it jumps
// through the decompressed text from one occurrence to the next and only
// runs the regexp on those lines, plus the lines whose plain text differs
// from their record (escapes, partial lines, events).
//
// # Not done here
//
// No fsync per frame, no encryption, no compression dictionaries, no
// cross-console index. A console whose Writer is never reopened keeps its
// last live segment unsealed. Segment selection trusts file names, so
// records written while the clock was behind a segment's name (set back)
// may be missed by a time-range query (not by a full read). The
// MaxPendingTotal budget is not shared out fairly between consoles.
package logstore
