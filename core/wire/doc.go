// Package wire holds x0x's CBOR codec, envelopes, size limits and
// domain-separated signing helpers.
package wire
