package metrics

import (
	"bufio"
	"math"
	"strconv"
	"time"

	"github.com/solgate/solgate/conserver"
)

// The per-console families are written straight into the text exposition
// instead of going through the registry: at 10,000 consoles and 15
// families that is 150,000 samples, which as const metrics cost half a
// second and 120 MB of garbage per scrape (BenchmarkScrape10000, run on
// the registry version before it was replaced; that version is not kept,
// so the figure cannot be re-run from this tree).

// states are every console state, for solgate_consoles.
var states = func() []conserver.State {
	var s []conserver.State
	for st := conserver.Connecting; st <= conserver.Stopped; st++ {
		s = append(s, st)
	}
	return s
}()

type consoleFamily struct {
	name, help string
	counter    bool
	// value returns the sample, or false to leave this console out.
	value func(s *conserver.Status) (float64, bool)
	// state adds the label state="..." (solgate_console_state).
	state bool
}

func always(v float64) (float64, bool) { return v, true }

// when is t as a Unix time, or false for the zero time (never).
func when(t time.Time) (float64, bool) {
	if t.IsZero() {
		return 0, false
	}
	return unix(t), true
}

var consoleFamilies = []consoleFamily{
	{name: "solgate_console_up", help: "1 if the console's SOL session is connected, else 0.",
		value: func(s *conserver.Status) (float64, bool) { return always(b2f(s.State == conserver.Up)) }},
	{name: "solgate_console_state", help: "The console's state in label state (connecting, up, retrying, waiting, contested, down, stopped); always 1.",
		state: true, value: func(s *conserver.Status) (float64, bool) { return 1, true }},
	{name: "solgate_console_state_since_timestamp_seconds", help: "When the console entered its current state (Unix time).",
		value: func(s *conserver.Status) (float64, bool) { return when(s.Since) }},
	{name: "solgate_console_up_since_timestamp_seconds", help: "When the console's current SOL session came up (Unix time); only while up.",
		value: func(s *conserver.Status) (float64, bool) { return when(s.UpSince) }},
	{name: "solgate_console_reconnects_total", help: "SOL sessions established after the first one.", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.Reconnects)) }},
	{name: "solgate_console_output_bytes_total", help: "Bytes the console printed (from the BMC).", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.BytesIn)) }},
	{name: "solgate_console_input_bytes_total", help: "Bytes typed into the console (to the BMC).", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.BytesOut)) }},
	{name: "solgate_console_last_output_timestamp_seconds", help: "When the console last printed anything (Unix time); absent before its first output.",
		value: func(s *conserver.Status) (float64, bool) { return when(s.LastOutput) }},
	{name: "solgate_console_attachments", help: "Users attached to the console.",
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.Attached)) }},
	{name: "solgate_console_sol_retransmits_total", help: "SOL input packets sent again (current or last session).", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.SOL.Retransmits)) }},
	{name: "solgate_console_sol_gaps_total", help: "SOL output packets from the BMC that never arrived (current or last session).", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.SOL.Gaps)) }},
	{name: "solgate_console_sol_overruns_total", help: "Overruns the BMC reported: console output it dropped (current or last session).", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.SOL.Overruns)) }},
	{name: "solgate_console_sol_input_dropped_bytes_total", help: "Typed bytes given up on after the BMC did not take them (current or last session).", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.SOL.InputDropped)) }},
	{name: "solgate_console_log_dropped_bytes_total", help: "Console bytes the log store lost (buffer full or disk errors).", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.Log.Dropped)) }},
	{name: "solgate_console_log_write_errors_total", help: "Failed writes to the console's log.", counter: true,
		value: func(s *conserver.Status) (float64, bool) { return always(float64(s.Log.WriteErrors)) }},
}

// consoleMetricNames lists every per-console family and solgate_consoles,
// for tests and the alert rules check.
func consoleMetricNames() []string {
	names := []string{"solgate_consoles"}
	for _, f := range consoleFamilies {
		names = append(names, f.name)
	}
	return names
}

// writeConsoles writes solgate_consoles and the per-console families of
// list in text exposition format 0.0.4.
func writeConsoles(w *bufio.Writer, list []conserver.Status) {
	var byState [conserver.Stopped + 1]int
	for i := range list {
		if st := list[i].State; st <= conserver.Stopped {
			byState[st]++
		}
	}
	b := make([]byte, 0, 256)
	b = appendHeader(b, "solgate_consoles", "Consoles in each state.", false)
	for _, st := range states {
		b = append(b, "solgate_consoles{state=\""...)
		b = append(b, st.String()...)
		b = append(b, "\"} "...)
		b = appendValue(b, float64(byState[st]))
		b = append(b, '\n')
	}
	w.Write(b)
	for _, f := range consoleFamilies {
		b = appendHeader(b[:0], f.name, f.help, f.counter)
		w.Write(b)
		for i := range list {
			s := &list[i]
			v, ok := f.value(s)
			if !ok {
				continue
			}
			b = append(b[:0], f.name...)
			b = append(b, "{console=\""...)
			b = appendLabelValue(b, s.Name)
			if f.state {
				b = append(b, "\",state=\""...)
				b = append(b, s.State.String()...)
			}
			b = append(b, "\"} "...)
			b = appendValue(b, v)
			b = append(b, '\n')
			w.Write(b)
		}
	}
}

func appendHeader(b []byte, name, help string, counter bool) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	for i := 0; i < len(help); i++ {
		switch help[i] {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, help[i])
		}
	}
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	if counter {
		b = append(b, " counter\n"...)
	} else {
		b = append(b, " gauge\n"...)
	}
	return b
}

// appendLabelValue escapes as the text format wants: backslash, double
// quote and line feed.
func appendLabelValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, v[i])
		}
	}
	return b
}

func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}
