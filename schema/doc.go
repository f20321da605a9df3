// Package schema owns the cluster spec: the embedded schema.cue (the single
// source of truth for fields, types, ranges and defaults), loading .cue and
// .yaml files, diagnostics with file:line:col, and the typed Go spec.
//
// Which files: LoadDir reads the files directly in the spec directory whose
// names end in .yaml, .yml or .cue; hidden files (".x.yaml") and
// sub-directories are skipped. A YAML file holds one cluster per document
// ("---" separates documents). All .cue files together form one CUE package
// that declares its clusters in a top-level map, keyed by cluster name:
//
//	clusters: prod: {provider: aws: region: "eu-west-1", managers: count: 3}
//
// The schema's definitions (#Cluster, #WorkerGroup, #Instance, ...) are in
// scope in those files, so clusters can share defaults through hidden
// fields or a `clusters: [_]: {...}` constraint (see fixtures/cue-shared).
//
// How a load goes: the schema is compiled once per process; YAML goes
// through CUE's encoding/yaml so positions survive; every document (or CUE
// cluster) is unified with #Cluster, which is closed, so unknown fields are
// errors; defaults come from the schema; the rules CUE cannot state (cron
// and duration syntax, exactly one provider, aws instance settings, the
// local subnet, reserved labels, unique names) are checked in Go; and a
// valid cluster is decoded into Cluster. Every problem of a load is
// returned at once as Diagnostics, each with the file (relative to the spec
// directory), line, column, field path and what was expected.
//
// It reads only the files it is given and does no other I/O; it prints
// nothing. Loads are serialised (CUE values are not safe for concurrent
// use).
package schema
