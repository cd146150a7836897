;; bigmemory: a module whose memory starts at 20 pages (1.25 MiB).
(module
  (memory (export "memory") 20)
  (func (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func (export "catmsim_init"))
)
