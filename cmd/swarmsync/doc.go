// Command swarmsync is the CLI: cobra commands, flag parsing, views and
// renderers, and the wiring of the daemon behind `apply --auto`.
//
// It must not hold planning or cloud logic: commands parse flags into
// structs, call the core packages, and hand results to a view. Only views
// print. main only exits with the code Main returns.
package main
