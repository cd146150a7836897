package scenarios

import (
	"fmt"
	"strconv"
	"strings"
)

// Environment variables ParseShard reads. Kubernetes sets JOB_COMPLETION_INDEX
// in each pod of an Indexed Job; the total comes from the command line or
// CATMSIM_SHARDS, since the pod is not told the job's completions count.
const (
	EnvJobIndex = "JOB_COMPLETION_INDEX"
	EnvShards   = "CATMSIM_SHARDS"
)

// MaxShards bounds the number of shards.
const MaxShards = 100_000

// ParseShard works out which shard this process runs, from the --shard flag
// and the environment:
//
//	--shard 2/8   shard 2 of 8 (shards count from 0), whatever the environment says
//	--shard /8    8 shards; this one is JOB_COMPLETION_INDEX
//	(no flag)     JOB_COMPLETION_INDEX of CATMSIM_SHARDS when the index is set,
//	              else the whole fleet: shard 0 of 1
func ParseShard(flag string, env func(string) string) (shard, shards int, err error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	flag = strings.TrimSpace(flag)
	index := strings.TrimSpace(env(EnvJobIndex))
	total := strings.TrimSpace(env(EnvShards))
	switch {
	case flag != "":
		i, n, ok := strings.Cut(flag, "/")
		if !ok {
			return 0, 0, fmt.Errorf("--shard %q: write it as i/N, e.g. 2/8 for shard 2 of 8 (counting from 0), or /N to take i from %s", flag, EnvJobIndex)
		}
		if shards, err = count("--shard", n); err != nil {
			return 0, 0, err
		}
		if i = strings.TrimSpace(i); i == "" {
			if index == "" {
				return 0, 0, fmt.Errorf("--shard %s takes the shard from %s, which is not set", flag, EnvJobIndex)
			}
			i = index
		}
		if shard, err = position(i, shards); err != nil {
			return 0, 0, err
		}
		return shard, shards, nil
	case index != "":
		if total == "" {
			return 0, 0, fmt.Errorf("%s is %s but the number of shards is unknown: set %s or pass --shard /N", EnvJobIndex, index, EnvShards)
		}
		if shards, err = count(EnvShards, total); err != nil {
			return 0, 0, err
		}
		if shard, err = position(index, shards); err != nil {
			return 0, 0, err
		}
		return shard, shards, nil
	case total != "" && total != "1":
		return 0, 0, fmt.Errorf("%s is %s but %s is not set: which shard is this? pass --shard i/%s", EnvShards, total, EnvJobIndex, total)
	}
	return 0, 1, nil
}

func count(what, s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > MaxShards {
		return 0, fmt.Errorf("%s: the number of shards must be a whole number from 1 to %d (got %q)", what, MaxShards, s)
	}
	return n, nil
}

func position(s string, shards int) (int, error) {
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= shards {
		return 0, fmt.Errorf("shard %q of %d: a shard is a whole number from 0 to %d", s, shards, shards-1)
	}
	return i, nil
}
