;; broken: everything Compile must name at once: a missing catmsim_init, an
;; export and an import of the wrong type, an import the ABI lacks, the
;; AssemblyScript abort import, set_timer without catmsim_on_timer, and
;; catmsim_on_method without catmsim_alloc.
(module
  (import "catmsim" "send_telemetry" (func (param i32 i32) (result i32)))
  (import "catmsim" "set_timer" (func (param i64) (result i32)))
  (import "env" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "env" "abort" (func (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func (export "catmsim_on_c2d") (param i32 i32) (result i32) (i32.const 0))
  (func (export "catmsim_on_method") (param i32 i32 i32 i32) (result i32) (i32.const 200))
)
