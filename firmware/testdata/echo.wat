;; echo: hands what the host gives it straight back to the host functions and
;; reports each function's result code by reading sensor <code>, so a test
;; host sees every code the host functions return.
(module
  (import "catmsim" "send_telemetry" (func $send (param i32 i32 i32 i32) (result i32)))
  (import "catmsim" "report_properties" (func $report (param i32 i32) (result i32)))
  (import "catmsim" "method_response" (func $respond (param i32 i32) (result i32)))
  (import "catmsim" "set_timer" (func $set_timer (param i64) (result i32)))
  (import "catmsim" "sleep" (func $sleep (param i64) (result i32)))
  (import "catmsim" "clock_ms" (func $clock (result i64)))
  (import "catmsim" "log" (func $log (param i32 i32 i32)))
  (import "catmsim" "sensor" (func $sensor (param i32) (result f64)))
  (memory (export "memory") 4)

  (func $note (param $code i32) (drop (call $sensor (local.get $code))))

  (func (export "catmsim_abi_version") (result i32) (i32.const 1))
  ;; Everything the host passes lands at 1024; 4 pages hold 255 KiB of it.
  (func (export "catmsim_alloc") (param i32) (result i32) (i32.const 1024))

  ;; init: a method response outside a method call, and a 300-byte log line.
  (func (export "catmsim_init")
    (call $note (call $respond (i32.const 0) (i32.const 0)))
    (call $log (i32.const 2) (i32.const 2048) (i32.const 300)))

  ;; on_timer: sets the timer to the clock's reading in milliseconds.
  (func (export "catmsim_on_timer")
    (call $note (call $set_timer (call $clock))))
  (func (export "catmsim_on_wake"))

  (func (export "catmsim_on_c2d") (param $body i32) (param $body_len i32) (param $props i32) (param $props_len i32) (result i32)
    (call $note (call $send (local.get $body) (local.get $body_len) (local.get $props) (local.get $props_len)))
    (i32.const 0))

  (func (export "catmsim_on_method") (param $name i32) (param $name_len i32) (param $payload i32) (param $payload_len i32) (result i32)
    (call $note (call $respond (local.get $payload) (local.get $payload_len)))
    (call $note (call $report (local.get $payload) (local.get $payload_len)))
    (i32.const 200))

  ;; on_desired: the version as a timer delay and as a sleep duration.
  (func (export "catmsim_on_desired") (param $patch i32) (param $len i32) (param $version i64)
    (call $note (call $set_timer (local.get $version)))
    (call $note (call $sleep (local.get $version))))
)
