// Command capi is the C ABI of x0x: the cgo //export layer built with
// -buildmode=c-shared into libx0x.so.0 and with -buildmode=c-archive into
// libx0x.a (see scripts/build-capi.sh). include/x0x.h is its contract and
// documents every function; this package implements it on top of the
// public Go facade core/x0x only.
//
// Layout: registry.go (handles), status.go (status codes and the mapping
// of Go errors), events.go and agent.go (event delivery: the one path of
// every record, with the lag markers of the queue), exports.go (the
// exported functions), topic.go (topic handles, subscriptions, lag markers
// and validators), pubsub.go (the agent-level pub/sub calls of ABI 0.2, on
// the same topic handles), tasklist.go, group.go (private groups and their
// forwarders), helpers.c (thread-local last error, readiness fd, callback
// and validator trampolines and the functions that need no Go).
package main

// main is required by -buildmode=c-shared/c-archive and never runs.
func main() {}

// handles is the one registry of the process. A cgo library has no other
// place to keep state between calls from C: every handle the library
// issues lives here, and it is the only package-level mutable variable.
var handles = newRegistry()
