// Package scale is solgate's scale and chaos suite: the whole daemon
// (solgate serve, in its own process) against fleets of simulated BMCs
// (solgate bmcsim, several processes of up to a few thousand BMCs each, one
// loopback address per BMC), under load and faults, with ConMan (conmand,
// FreeIPMI's libipmiconsole) run against the same fleets where a scenario
// applies to it. A private rsyslog receives the syslog stream, OpenSSH
// clients attach through the SSH gateway.
//
// Every scenario checks what it measures: each console's log is read back
// and compared byte for byte with the numbered stream its BMC printed (or
// the boot text), and the scenario fails on a loss the target does not
// allow. Resident memory, CPU time and open files of the daemon (and of
// conmand) are sampled from /proc.
//
// Sizes: by default each scenario runs small (a few dozen consoles, a few
// seconds), so that make test keeps the suite working; SOLGATE_SCALE=full
// (make scale) runs the sizes the README's table reports. README.md in this
// directory lists the scenarios, their knobs and how to read the report.
//
// The package has only tests; nothing imports it.
package scale
