;; trap: test firmware that reports once, then traps on its first timer tick,
;; so a test sees one device fail alone with the trap in the report.
(module
  (import "catmsim" "report_properties" (func $report (param i32 i32) (result i32)))
  (import "catmsim" "set_timer" (func $set_timer (param i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"boot\":1}")
  (func (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func (export "catmsim_init")
    (drop (call $report (i32.const 16) (i32.const 10)))
    (drop (call $set_timer (i64.const 100))))
  (func $read_sensor (unreachable))
  (func (export "catmsim_on_timer") (call $read_sensor))
)
