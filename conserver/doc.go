// Package conserver is solgate's console manager: one SOL session per
// configured console kept connected, output fanned out to the log store
// and attached users, escape commands, and power actions.
//
// Subpackages: config (parse, validate, diff and watch the configuration),
// hostlist (pdsh-style host ranges), escape (escape-key parser), power
// (parallel power actions).
//
// So far this package holds the translation from configured console
// settings to ipmilan connection settings (BMCConfig).
package conserver
