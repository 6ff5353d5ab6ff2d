// Package test holds solgate's end-to-end and interop tests: solgate
// against software nobody here wrote (OpenIPMI's ipmi_sim, ipmitool,
// FreeIPMI, OpenSSH, rsyslog, the zstd CLI) and third-party clients against
// solgate's simulator. Every peer runs on loopback and is stopped by PID.
//
// A missing peer program skips its test, unless SOLGATE_REQUIRE_INTEROP is
// set (CI sets it), which turns the skip into a failure.
package test
