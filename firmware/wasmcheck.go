package firmware

import (
	"errors"
	"fmt"
)

// MaxModuleBytes bounds the size of a firmware module. Real firmware for a
// device with a few MB of flash is far smaller; Go's wasip1 output, the
// largest module anyone is likely to try, is about 2 MB.
const MaxModuleBytes = 8 << 20

// maxLocals bounds the locals of one function, as browsers' engines do.
const maxLocals = 50000

// checkModule walks a module's binary structure before wazero decodes it,
// and rejects one whose vector counts could not fit in the bytes that follow
// them. wazero's decoder allocates a vector's entries before reading them, so
// a corrupt count (one byte flipped in a length) would have it allocate
// gigabytes and take the process down, not just fail the load. With every
// count bounded by the bytes left, what wazero allocates is proportional to
// the module's size. checkModule reads the same grammar wazero does (wasm 2.0
// with extended constant expressions); anything else is reported as
// malformed, which wazero would reject as well.
func checkModule(wasm []byte) error {
	if len(wasm) > MaxModuleBytes {
		return fmt.Errorf("the module is %s, more than the %s a firmware module may be", sizeString(uint64(len(wasm))), sizeString(MaxModuleBytes))
	}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil // not wasm at all: wazero says so without allocating
	}
	r := &wreader{b: wasm, off: 8}
	for r.left() > 0 {
		id, err := r.byte()
		if err != nil {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		sec, err := r.sub(int(size), "section")
		if err != nil {
			return err
		}
		if err := checkSection(id, sec); err != nil {
			return fmt.Errorf("malformed module: section %d: %w", id, err)
		}
	}
	return nil
}

func checkSection(id byte, r *wreader) error {
	switch id {
	case 0: // custom
		name, err := r.name()
		if err != nil || name != "name" {
			return err // other custom sections are skipped whole
		}
		return checkNames(r)
	case 1: // type
		return r.each(3, "function types", func() error {
			if b, err := r.byte(); err != nil || b != 0x60 {
				return errOr(err, r.errorf("expected a function type (0x60), found 0x%02x", b))
			}
			for range 2 { // params, results
				n, err := r.vec(1, "value types")
				if err != nil {
					return err
				}
				if err := r.skip(n); err != nil {
					return err
				}
			}
			return nil
		})
	case 2: // import
		return r.each(4, "imports", func() error {
			if _, err := r.name(); err != nil {
				return err
			}
			if _, err := r.name(); err != nil {
				return err
			}
			return r.externType()
		})
	case 3: // function
		return r.each(1, "functions", r.skipU32)
	case 4: // table
		return r.each(2, "tables", func() error {
			if err := r.skip(1); err != nil {
				return err
			}
			return r.limits()
		})
	case 5: // memory
		return r.each(2, "memories", r.limits)
	case 6: // global
		return r.each(4, "globals", func() error {
			if err := r.skip(2); err != nil { // value type, mutability
				return err
			}
			return r.constExpr()
		})
	case 7: // export
		return r.each(3, "exports", func() error {
			if _, err := r.name(); err != nil {
				return err
			}
			if err := r.skip(1); err != nil {
				return err
			}
			return r.skipU32()
		})
	case 8, 12: // start, data count
		return r.skipU32()
	case 9: // element
		return r.each(3, "element segments", r.elementSegment)
	case 10: // code
		return r.each(2, "function bodies", func() error {
			size, err := r.u32()
			if err != nil {
				return err
			}
			body, err := r.sub(int(size), "function body")
			if err != nil {
				return err
			}
			total := 0
			return body.each(2, "local declarations", func() error {
				n, err := body.u32()
				if err != nil {
					return err
				}
				if total += int(n); total > maxLocals {
					return body.errorf("a function declares more than %d locals", maxLocals)
				}
				return body.skip(1)
			})
		})
	case 11: // data
		return r.each(2, "data segments", func() error {
			flags, err := r.u32()
			if err != nil {
				return err
			}
			switch flags {
			case 0:
				err = r.constExpr()
			case 1:
			case 2:
				if err = r.skipU32(); err == nil {
					err = r.constExpr()
				}
			default:
				err = r.errorf("unknown data segment kind %d", flags)
			}
			if err != nil {
				return err
			}
			n, err := r.vec(1, "data bytes")
			if err != nil {
				return err
			}
			return r.skip(n)
		})
	}
	return fmt.Errorf("unknown section id %d", id)
}

// checkNames checks the name section's subsections (module, function and
// local names), which wazero decodes for stack traces.
func checkNames(r *wreader) error {
	for r.left() > 0 {
		id, err := r.byte()
		if err != nil {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		sub, err := r.sub(int(size), "name subsection")
		if err != nil {
			return err
		}
		nameMap := func(rr *wreader) error {
			return rr.each(2, "names", func() error {
				if err := rr.skipU32(); err != nil {
					return err
				}
				_, err := rr.name()
				return err
			})
		}
		switch id {
		case 1:
			err = nameMap(sub)
		case 2:
			err = sub.each(2, "local name maps", func() error {
				if err := sub.skipU32(); err != nil {
					return err
				}
				return nameMap(sub)
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// wreader reads a wasm binary within bounds; off counts from the start of
// the module so errors can say where.
type wreader struct {
	b   []byte
	off int
	end int // 0 means len(b)
}

var errTruncated = errors.New("unexpected end")

func (r *wreader) limit() int {
	if r.end == 0 {
		return len(r.b)
	}
	return r.end
}

func (r *wreader) left() int { return r.limit() - r.off }

func (r *wreader) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at offset %d", fmt.Sprintf(format, args...), r.off)
}

func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

func (r *wreader) byte() (byte, error) {
	if r.left() < 1 {
		return 0, r.errorf("%v", errTruncated)
	}
	r.off++
	return r.b[r.off-1], nil
}

func (r *wreader) skip(n int) error {
	if n < 0 || n > r.left() {
		return r.errorf("%v: %d bytes wanted, %d left", errTruncated, n, r.left())
	}
	r.off += n
	return nil
}

// sub returns a reader for the next n bytes and moves past them.
func (r *wreader) sub(n int, what string) (*wreader, error) {
	if n < 0 || n > r.left() {
		return nil, r.errorf("%s of %d bytes runs past the %d bytes left", what, n, r.left())
	}
	s := &wreader{b: r.b, off: r.off, end: r.off + n}
	r.off += n
	return s, nil
}

// leb reads an unsigned LEB128 number of at most maxBytes bytes.
func (r *wreader) leb(maxBytes int) (uint64, error) {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return v, nil
		}
	}
	return 0, r.errorf("integer longer than %d bytes", maxBytes)
}

func (r *wreader) u32() (uint32, error) {
	v, err := r.leb(5)
	if err == nil && v > 1<<32-1 {
		return 0, r.errorf("integer %d overflows 32 bits", v)
	}
	return uint32(v), err
}

func (r *wreader) skipU32() error {
	_, err := r.u32()
	return err
}

// vec reads a vector's count and checks that that many entries of at least
// minBytes each fit in what is left.
func (r *wreader) vec(minBytes int, what string) (int, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minBytes) > uint64(r.left()) {
		return 0, r.errorf("%d %s cannot fit in the %d bytes left", n, what, r.left())
	}
	return int(n), nil
}

// each reads a vector and checks each entry with entry.
func (r *wreader) each(minBytes int, what string, entry func() error) error {
	n, err := r.vec(minBytes, what)
	if err != nil {
		return err
	}
	for range n {
		if err := entry(); err != nil {
			return err
		}
	}
	return nil
}

func (r *wreader) name() (string, error) {
	n, err := r.vec(1, "name bytes")
	if err != nil {
		return "", err
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s, nil
}

// limits reads table or memory limits: a flag, a minimum, maybe a maximum.
func (r *wreader) limits() error {
	flag, err := r.byte()
	if err != nil {
		return err
	}
	switch flag {
	case 0x00:
		return r.skipU32()
	case 0x01, 0x02, 0x03: // with a maximum; 2 and 3 are shared memories
		if err := r.skipU32(); err != nil {
			return err
		}
		return r.skipU32()
	}
	return r.errorf("unknown limits flag 0x%02x", flag)
}

// externType reads an import's description.
func (r *wreader) externType() error {
	kind, err := r.byte()
	if err != nil {
		return err
	}
	switch kind {
	case 0x00: // function
		return r.skipU32()
	case 0x01: // table
		if err := r.skip(1); err != nil {
			return err
		}
		return r.limits()
	case 0x02: // memory
		return r.limits()
	case 0x03: // global
		return r.skip(2)
	}
	return r.errorf("unknown import kind 0x%02x", kind)
}

// constExpr reads a constant expression up to its end opcode.
func (r *wreader) constExpr() error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41, 0x23, 0xd2: // i32.const, global.get, ref.func
			_, err = r.leb(5)
		case 0x42: // i64.const
			_, err = r.leb(10)
		case 0x43: // f32.const
			err = r.skip(4)
		case 0x44: // f64.const
			err = r.skip(8)
		case 0xd0: // ref.null
			err = r.skip(1)
		case 0xfd: // v128.const
			var sub uint32
			if sub, err = r.u32(); err == nil {
				if sub != 12 {
					return r.errorf("unsupported instruction 0xfd %d in a constant expression", sub)
				}
				err = r.skip(16)
			}
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant arithmetic
		default:
			return r.errorf("unsupported instruction 0x%02x in a constant expression", op)
		}
		if err != nil {
			return err
		}
	}
}

// elementSegment reads one element segment in any of its eight forms.
func (r *wreader) elementSegment() error {
	flags, err := r.u32()
	if err != nil {
		return err
	}
	if flags > 7 {
		return r.errorf("unknown element segment kind %d", flags)
	}
	if flags&2 != 0 && flags&1 == 0 { // explicit table index
		if err := r.skipU32(); err != nil {
			return err
		}
	}
	if flags&1 == 0 { // active: an offset expression
		if err := r.constExpr(); err != nil {
			return err
		}
	}
	if flags&3 != 0 { // element kind or reference type
		if err := r.skip(1); err != nil {
			return err
		}
	}
	if flags&4 == 0 { // function indices
		return r.each(1, "function indices", r.skipU32)
	}
	return r.each(1, "element expressions", r.constExpr)
}
