// Package hostlist expands and compresses host lists in the notation of pdsh,
// Slurm and ClusterShell: node[001-128,200],gpu[1-4],rack[1-2]-node[01-40].
//
// Syntax:
//   - A list is terms separated by commas or white space outside brackets;
//     empty terms are ignored.
//   - A term is literal text with any number of bracket groups; several groups
//     expand as a cartesian product, the leftmost varying slowest
//     (rack[1-2]-n[1-2] is rack1-n1 rack1-n2 rack2-n1 rack2-n2).
//   - A bracket group holds comma-separated numbers and lo-hi ranges. Numbers
//     are zero-padded to the width of the lower bound as written: [08-10] is
//     08 09 10 and [8-10] is 8 9 10.
//   - A bracket group that holds an IPv6 address is copied as is, so BMC
//     addresses such as [fd00::7]:623 work. Any other ':' in brackets is an
//     error (Slurm's steps, [1-9:2], are not supported).
//
// Expansion keeps input order, drops duplicates (the first occurrence wins;
// ExpandDups also says which names were repeated) and refuses lists larger
// than a limit (DefaultLimit names, or the limit passed to ExpandLimit)
// before producing any name. Errors are *Error values naming the input (cut
// to 60 characters, non-ASCII shown as characters) and the byte offset of
// the problem.
//
// Compress is the reverse, for display: it groups names by the text around
// their last number and by zero-padded width. It does not fold several
// dimensions into one term (rack1-node[1-2],rack2-node[1-2] stays two terms).
//
// Entry points: Expand, ExpandLimit, ExpandDups, ExpandParallel, Compress.
//
// The package has no state; every function is safe for concurrent use.
package hostlist
