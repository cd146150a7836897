;; startloop: a module whose start function never returns, so loading it
;; must be cut off by the time limit.
(module
  (memory (export "memory") 1)
  (func $start (loop $forever (br $forever)))
  (start $start)
  (func (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func (export "catmsim_init"))
)
