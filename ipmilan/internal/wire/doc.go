// Package wire holds the pure codecs of IPMI over LAN: the RMCP and ASF
// headers, IPMI v1.5 and v2.0 (RMCP+) session wrappers, IPMI LAN messages,
// the RMCP+ session-setup messages (Open Session, RAKP 1-4) with their key
// derivation, the SOL payload, and the request and response bodies of the
// commands ipmilan uses.
//
// Decoders are functions from bytes to a value (ParseXxx) and never panic on
// short or hostile input; encoders append to a caller-supplied slice
// (v.Append(b)). Nothing here does I/O, keeps state between calls or logs.
// Session state (sequence windows, retransmission) belongs to the callers:
// the ipmilan client and the bmcsim simulator share these codecs.
//
// All multi-byte IPMI integers are little-endian; ASF and RMCP fields are
// big-endian. Section numbers in comments refer to the IPMI v2.0 rev 1.1
// specification.
package wire
