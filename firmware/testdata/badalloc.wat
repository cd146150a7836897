;; badalloc: an allocator that hands out memory the module does not have, and
;; a log call with a length that wraps past the end of memory.
(module
  (import "catmsim" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func $catmsim_abi_version (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func $catmsim_alloc (export "catmsim_alloc") (param i32) (result i32) (i32.const 65530))
  (func $catmsim_init (export "catmsim_init") (call $log (i32.const 1) (i32.const 8) (i32.const -1)))
  (func $catmsim_on_c2d (export "catmsim_on_c2d") (param i32 i32 i32 i32) (result i32) (i32.const 0))
)
