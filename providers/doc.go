// Package providers holds the small interfaces that plan and apply consume
// (Cloud, Swarm, and Leaser for the apply lease held on the Swarm) and their
// neutral value types (Instance, Node, Lease, ...).
//
// It must not import any cloud or Docker SDK: implementations live in
// providers/aws, providers/docker and providers/local, and translate SDK
// types into these at their boundary.
package providers
