package scenarios

import (
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	tests := []struct {
		name          string
		flag          string
		env           map[string]string
		shard, shards int
		err           string
	}{
		{"nothing: the whole fleet", "", nil, 0, 1, ""},
		{"flag", "2/8", nil, 2, 8, ""},
		{"flag with blanks", " 0 / 1 ", nil, 0, 1, ""},
		{"flag wins over the environment", "1/4", map[string]string{EnvJobIndex: "3", EnvShards: "8"}, 1, 4, ""},
		{"flag total, index from the job", "/8", map[string]string{EnvJobIndex: "5"}, 5, 8, ""},
		{"environment only", "", map[string]string{EnvJobIndex: "3", EnvShards: "4"}, 3, 4, ""},
		{"one shard in the environment", "", map[string]string{EnvShards: "1"}, 0, 1, ""},
		{"flag without a slash", "3", nil, 0, 0, "write it as i/N"},
		{"shard too big", "8/8", nil, 0, 0, `shard "8" of 8: a shard is a whole number from 0 to 7`},
		{"negative shard", "-1/8", nil, 0, 0, "from 0 to 7"},
		{"zero shards", "0/0", nil, 0, 0, "the number of shards must be a whole number from 1 to 100000"},
		{"words", "a/b", nil, 0, 0, "the number of shards must be"},
		{"index not a number", "/4", map[string]string{EnvJobIndex: "x"}, 0, 0, `shard "x" of 4`},
		{"index missing for /N", "/4", nil, 0, 0, "takes the shard from JOB_COMPLETION_INDEX, which is not set"},
		{"index without a total", "", map[string]string{EnvJobIndex: "2"}, 0, 0, "the number of shards is unknown: set CATMSIM_SHARDS or pass --shard /N"},
		{"index beyond the total", "", map[string]string{EnvJobIndex: "4", EnvShards: "4"}, 0, 0, "from 0 to 3"},
		{"total without an index", "", map[string]string{EnvShards: "4"}, 0, 0, "which shard is this? pass --shard i/4"},
		{"too many shards", "0/100001", nil, 0, 0, "from 1 to 100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shard, shards, err := ParseShard(tt.flag, func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %d/%d, error %v; want an error containing %q", shard, shards, err, tt.err)
				}
				return
			}
			if err != nil || shard != tt.shard || shards != tt.shards {
				t.Fatalf("got %d/%d, %v; want %d/%d", shard, shards, err, tt.shard, tt.shards)
			}
		})
	}
	if s, n, err := ParseShard("", nil); err != nil || s != 0 || n != 1 {
		t.Errorf("nil environment: %d/%d %v", s, n, err)
	}
}
