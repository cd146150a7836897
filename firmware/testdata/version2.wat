;; version2: a module written for an ABI this host does not speak.
(module
  (memory (export "memory") 1)
  (func (export "catmsim_abi_version") (result i32) (i32.const 2))
  (func (export "catmsim_init"))
)
