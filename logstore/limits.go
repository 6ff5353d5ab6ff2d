package logstore

import "time"

// Limits are one console's rotation and retention settings (the
// configuration's log_rotate_size, log_rotate_age, log_retain_age,
// log_retain_size). A zero field takes the Store's Options value.
type Limits struct {
	SegmentBytes int64
	SegmentAge   time.Duration
	RetainAge    time.Duration
	RetainBytes  int64
}

// SetLimits changes the Writer's rotation and retention; it applies from
// the next flush (rotation) and the next retention pass, with no reopen.
func (w *Writer) SetLimits(l Limits) {
	w.lim.Store(&l)
}

// limits returns the Writer's settings merged with the Store's.
func (w *Writer) limits() Limits {
	l := Limits{SegmentBytes: w.s.opt.SegmentBytes, SegmentAge: w.s.opt.SegmentAge,
		RetainAge: w.s.opt.RetainAge, RetainBytes: w.s.opt.RetainBytes}
	if o := w.lim.Load(); o != nil {
		if o.SegmentBytes > 0 {
			l.SegmentBytes = o.SegmentBytes
		}
		if o.SegmentAge > 0 {
			l.SegmentAge = o.SegmentAge
		}
		if o.RetainAge > 0 {
			l.RetainAge = o.RetainAge
		}
		if o.RetainBytes > 0 {
			l.RetainBytes = o.RetainBytes
		}
	}
	return l
}
