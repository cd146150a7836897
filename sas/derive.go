package sas

import (
	"crypto/hmac"
	"crypto/sha256"
)

// DeriveKey computes a device's key from an enrollment group's key the way the
// Device Provisioning Service does for symmetric-key group enrollments:
// HMAC-SHA256 keyed with the decoded group key over the registration id (the
// device id), used as the device's decoded key. Its base64 text (EncodeKey) is
// what a device's connection string carries.
func DeriveKey(groupKey []byte, registrationID string) []byte {
	m := hmac.New(sha256.New, groupKey)
	m.Write([]byte(registrationID))
	return m.Sum(nil)
}
