// Package ansi strips terminal control sequences from a byte stream, the
// way a VT100-compatible terminal would consume them without showing
// anything: ESC sequences (charset selection, keypad modes, ...), CSI
// sequences (cursor movement, colours, erasing), and the string controls
// OSC (window titles, hyperlinks, clipboard), DCS, SOS, PM and APC.
//
// A Stripper is a streaming decoder: it keeps its state between calls, so
// stripping a stream in chunks split anywhere, even inside a sequence,
// gives the same result as stripping it whole. It follows the state
// machine of the DEC VT500 parser (vt100.net/emu/dec_ansi_parser), in its
// UTF-8 form: bytes from 0x80 up are text, never C1 controls, and a
// non-ASCII byte inside a sequence aborts the sequence and is kept, so a
// stray ESC cannot swallow text.
//
// What is kept: text, TAB, LF, CR and BS (which a caller may interpret,
// as logstore does for its plain view); other C0 controls and DEL are
// dropped, as are CAN and SUB, which also abort a sequence. A string
// control longer than MaxString bytes is abandoned and what follows it
// is text again, so a lost terminator cannot hide the rest of a log.
//
// A Stripper is not safe for concurrent use; the functions are pure.
package ansi
