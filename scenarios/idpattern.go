package scenarios

import (
	"fmt"
	"strconv"
	"strings"
)

// idPattern is a compiled id_pattern: a literal prefix and suffix around one
// optional {index}. {group} and {seed} are constant within a group, so they
// are folded into the literals.
type idPattern struct {
	prefix, suffix string
	width          int // zero-padding of {index}
	hasIndex       bool
}

var placeholders = []string{"group", "index", "seed"}

func compileIDPattern(pattern, group string, seed uint64) (idPattern, error) {
	var ip idPattern
	var b strings.Builder
	rest := pattern
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			b.WriteString(rest)
			break
		}
		if rest[open] == '}' {
			return idPattern{}, fmt.Errorf("has a } without its {")
		}
		b.WriteString(rest[:open])
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return idPattern{}, fmt.Errorf("has a { without its }")
		}
		inner := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		name, format, hasFormat := strings.Cut(inner, ":")
		switch name {
		case "group", "seed":
			if hasFormat {
				return idPattern{}, fmt.Errorf("{%s} takes no format (got {%s})", name, inner)
			}
			if name == "group" {
				b.WriteString(group)
			} else {
				b.WriteString(strconv.FormatUint(seed, 10))
			}
		case "index":
			if ip.hasIndex {
				return idPattern{}, fmt.Errorf("has {index} more than once")
			}
			ip.hasIndex = true
			if hasFormat {
				w, err := strconv.Atoi(format)
				if err != nil || w < 1 || w > 20 || strings.TrimLeft(format, "0123456789") != "" {
					return idPattern{}, fmt.Errorf("{index:%s}: the format is a width from 1 to 20, as in {index:05}", format)
				}
				ip.width = w
			}
			ip.prefix = b.String()
			b.Reset()
		default:
			return idPattern{}, fmt.Errorf("unknown placeholder {%s}; use {group}, {index}, {index:05} or {seed}%s",
				clip(inner), suggestionBraced(name))
		}
	}
	if ip.hasIndex {
		ip.suffix = b.String()
	} else {
		ip.prefix = b.String()
	}
	return ip, nil
}

func suggestionBraced(name string) string {
	if c := closest(name, placeholders); c != "" {
		return " — did you mean {" + c + "}?"
	}
	return ""
}

// appendID appends the id of the device with index i in its group.
func (ip idPattern) appendID(b []byte, i int) []byte {
	b = append(b, ip.prefix...)
	if !ip.hasIndex {
		return b
	}
	start := len(b)
	b = strconv.AppendInt(b, int64(i), 10)
	if pad := ip.width - (len(b) - start); pad > 0 {
		b = append(b, make([]byte, pad)...)
		copy(b[start+pad:], b[start:len(b)-pad])
		for j := start; j < start+pad; j++ {
			b[j] = '0'
		}
	}
	return append(b, ip.suffix...)
}

func (ip idPattern) id(i int) string { return string(ip.appendID(nil, i)) }

// has reports whether id is the id of one of a group's count devices. Zero
// padding to a minimum width is one-to-one, so the index is recovered
// exactly.
func (ip idPattern) has(id []byte, count int) bool {
	if !ip.hasIndex {
		return string(id) == ip.prefix && count > 0
	}
	if len(id) < len(ip.prefix)+len(ip.suffix) || string(id[:len(ip.prefix)]) != ip.prefix ||
		string(id[len(id)-len(ip.suffix):]) != ip.suffix {
		return false
	}
	digits := id[len(ip.prefix) : len(id)-len(ip.suffix)]
	if len(digits) == 0 || len(digits) < ip.width {
		return false
	}
	if len(digits) > max(ip.width, 1) && digits[0] == '0' {
		return false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n >= count {
			return false // and no overflow: count is small
		}
	}
	return true
}

// mayOverlap is a cheap test that two patterns cannot produce a common id: one
// literal prefix must be a prefix of the other, and likewise the suffixes.
func (ip idPattern) mayOverlap(o idPattern) bool {
	pre := func(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }
	suf := func(a, b string) bool { return strings.HasSuffix(a, b) || strings.HasSuffix(b, a) }
	return pre(ip.prefix, o.prefix) && (suf(ip.suffix, o.suffix) || !ip.hasIndex || !o.hasIndex)
}
