// Package schema owns the cluster spec: the embedded schema.cue (the single
// source of truth for fields, types, ranges and defaults), loading .cue and
// .yaml files, diagnostics with file:line:col, and the typed Go spec.
//
// It reads only the files it is given and does no other I/O.
package schema
