// Package client is the Go client of Leakwatch's HTTP API (/api/v1) that
// the CLI uses, and the parser of the metadata file `leakwatch keys import`
// reads. It lives apart from cmd so that cmd only wires, and so that the
// client is tested against the real API on its own.
//
// It only ever sends fingerprints and metadata: secrets are fingerprinted
// by the caller (matcher.Compute) before anything reaches this package.
package client
