;; starttrap: a module whose start function traps, so it fails at load.
(module
  (memory (export "memory") 1)
  (func $start (unreachable))
  (start $start)
  (func (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func (export "catmsim_init"))
)
