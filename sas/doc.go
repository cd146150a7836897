// Package sas owns the credentials every protocol client and the hub emulator use:
// connection strings, shared access signature (SAS) tokens — signing them as the
// official Azure SDKs do and verifying them as IoT Hub does — per-device key
// derivation for group enrollments, and X.509 helpers.
//
// Tokens have the form
//
//	SharedAccessSignature sr={enc(resource)}&sig={enc(base64(HMAC-SHA256(key, enc(resource)+"\n"+se)))}&se={expiry}[&skn={policy}]
//
// where key is the base64-decoded shared access key and enc escapes every byte
// outside A-Z a-z 0-9 - _ . ~ with upper-case hex, as Node's
// encodeURIComponentStrict, Python's quote(safe="") and .NET's
// WebUtility.UrlEncode do. Nothing is lower-cased: device ids are case-sensitive.
//
// Verification follows the hub rather than the signer: the MAC is computed over
// the sr text exactly as received (so %2f, %2F, quote_plus and unencoded forms
// all verify when signed consistently), the key is chosen by skn or by the
// identity the audience names, the expiry is compared with an injected clock,
// and the audience must be a segment prefix of the resource being accessed.
// Each way a token can fail is its own error type, so callers can tell a user
// what to fix.
//
// Keys never appear in error texts or in the String form of a connection string.
package sas
