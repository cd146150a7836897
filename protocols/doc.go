// Package protocols owns the device side: the small interface every virtual
// device talks through, its optional capabilities, typed errors, credentials and
// options. Each protocol is a sub-package that dials through package network, so
// every byte it moves is metered.
package protocols
