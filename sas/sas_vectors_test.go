package sas

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

// vectorFile is written by testdata/vectors.py, which signs with Python's
// standard library only, so these tests compare this package with an
// implementation that shares none of its code.
type vectorFile struct {
	Cases []struct {
		Name     string `json:"name"`
		Token    string `json:"token"`
		Key      string `json:"key"`
		Resource string `json:"resource"`
		Now      int64  `json:"now"`
		Expect   string `json:"expect"`
		Note     string `json:"note"`
		Sign     *struct {
			Resource string `json:"resource"`
			Expiry   int64  `json:"expiry"`
			KeyName  string `json:"keyName"`
		} `json:"sign"`
	} `json:"cases"`
	DerivedKeys []struct {
		GroupKey       string `json:"groupKey"`
		RegistrationID string `json:"registrationId"`
		DeviceKey      string `json:"deviceKey"`
	} `json:"derivedKeys"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 || len(v.DerivedKeys) == 0 {
		t.Fatal("testdata/vectors.json holds no cases")
	}
	return v
}

var expectErr = map[string]error{
	"ok":             nil,
	"bad_signature":  ErrBadSignature,
	"expired":        ErrExpired,
	"wrong_resource": ErrWrongResource,
	"malformed":      ErrMalformed,
}

func TestVectorsVerify(t *testing.T) {
	for _, c := range loadVectors(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			want, ok := expectErr[c.Expect]
			if !ok {
				t.Fatalf("unknown expectation %q", c.Expect)
			}
			key, err := DecodeKey(c.Key)
			if err != nil {
				t.Fatal(err)
			}
			v := Verifier{Keys: StaticKey(key), Now: func() time.Time { return time.Unix(c.Now, 0) }}
			_, err = v.Verify(c.Token, c.Resource)
			if want == nil {
				if err != nil {
					t.Fatalf("%s: want valid, got %v", c.Note, err)
				}
				return
			}
			if !errors.Is(err, want) {
				t.Fatalf("%s: want %v, got %v", c.Note, want, err)
			}
		})
	}
}

func TestVectorsSign(t *testing.T) {
	n := 0
	for _, c := range loadVectors(t).Cases {
		if c.Sign == nil {
			continue
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			key, err := DecodeKey(c.Key)
			if err != nil {
				t.Fatal(err)
			}
			got := Sign(c.Sign.Resource, key, c.Sign.KeyName, time.Unix(c.Sign.Expiry, 0))
			if got != c.Token {
				t.Fatalf("Sign(%q)\n got %s\nwant %s", c.Sign.Resource, got, c.Token)
			}
		})
	}
	if n < 5 {
		t.Fatalf("only %d signing vectors", n)
	}
}

func TestVectorsDeriveKey(t *testing.T) {
	for _, d := range loadVectors(t).DerivedKeys {
		t.Run(d.RegistrationID, func(t *testing.T) {
			g, err := DecodeKey(d.GroupKey)
			if err != nil {
				t.Fatal(err)
			}
			if got := EncodeKey(DeriveKey(g, d.RegistrationID)); got != d.DeviceKey {
				t.Fatalf("DeriveKey(%q) = %s, want %s", d.RegistrationID, got, d.DeviceKey)
			}
		})
	}
}
