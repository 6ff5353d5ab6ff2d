package logstore

// The open-file budget. Every console's Writer keeps its live segment open
// between writes while the Store has fewer than Options.MaxOpenFiles open;
// beyond that each Writer closes its segment after writing and reopens it
// at the next write. An open and a close per frame cost microseconds; a
// descriptor per console is what a 10,000-console daemon under a 20,000
// descriptor limit cannot afford.

// setFileIO makes f the live segment's file. Caller holds ioMu.
func (w *Writer) setFileIO(f segFile) {
	if w.f == nil && f != nil {
		w.s.openFiles.Add(1)
	}
	w.f = f
}

// closeFileIO closes the live segment's file, if open. Caller holds ioMu.
func (w *Writer) closeFileIO() {
	if w.f == nil {
		return
	}
	w.f.Close()
	w.f = nil
	w.s.openFiles.Add(-1)
}

// releaseOverBudgetIO closes the file after a write when the Store holds
// too many open. Caller holds ioMu.
func (w *Writer) releaseOverBudgetIO() {
	if w.f != nil && w.s.openFiles.Load() > w.s.maxOpen.Load() {
		w.closeFileIO()
	}
}

// SetMaxOpenFiles changes Options.MaxOpenFiles of a running Store (the
// daemon sizes it from its open-file limit and its number of consoles,
// which a reload changes); n <= 0 restores the default. Segments open
// beyond a lowered budget close after their next write.
func (s *Store) SetMaxOpenFiles(n int) {
	if n <= 0 {
		n = defaultMaxOpenFiles
	}
	s.maxOpen.Store(int64(n))
}

// OpenFiles reports how many live segments are open now.
func (s *Store) OpenFiles() int { return int(s.openFiles.Load()) }
