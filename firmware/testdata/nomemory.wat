;; nomemory: a module that keeps its memory to itself.
(module
  (memory 1)
  (func (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func (export "catmsim_init"))
)
