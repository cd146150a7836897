;; ticker: test firmware for the fleet. It exercises every host function the
;; fleet implements on a pace a test can wait for: on init it reports
;; {"boot":1} and arms a 100 ms timer; each tick sends {"tick":N} with the
;; property kind=tick and re-arms the timer; the third tick asks for a 300 ms
;; sleep instead, and on waking it sends {"woke":1} and ticks again. A C2D
;; message is rejected when its body starts with 'r' and completed otherwise,
;; a method answers 201 with its payload, and a desired patch is acknowledged
;; by reporting {"applied":1}.
(module
  (import "catmsim" "send_telemetry" (func $send (param i32 i32 i32 i32) (result i32)))
  (import "catmsim" "report_properties" (func $report (param i32 i32) (result i32)))
  (import "catmsim" "method_response" (func $respond (param i32 i32) (result i32)))
  (import "catmsim" "set_timer" (func $set_timer (param i64) (result i32)))
  (import "catmsim" "sleep" (func $sleep (param i64) (result i32)))
  (import "catmsim" "sensor" (func $sensor (param i32) (result f64)))
  (import "catmsim" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"boot\":1}")          ;; 10 bytes
  (data (i32.const 32) "{\"tick\":0}")          ;; 10 bytes, the digit at 40
  (data (i32.const 48) "kind\00tick")           ;; 9 bytes
  (data (i32.const 64) "{\"woke\":1}")          ;; 10 bytes
  (data (i32.const 80) "woke up")               ;; 7 bytes
  (data (i32.const 96) "{\"applied\":1}")       ;; 13 bytes
  (global $ticks (mut i32) (i32.const 0))

  (func (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func (export "catmsim_alloc") (param i32) (result i32) (i32.const 1024))

  (func (export "catmsim_init")
    (drop (call $report (i32.const 16) (i32.const 10)))
    (drop (call $set_timer (i64.const 100))))

  (func (export "catmsim_on_timer")
    (global.set $ticks (i32.add (global.get $ticks) (i32.const 1)))
    (i32.store8 (i32.const 40) (i32.add (i32.const 48) (i32.rem_u (global.get $ticks) (i32.const 10))))
    (drop (call $sensor (i32.const 0)))
    (drop (call $send (i32.const 32) (i32.const 10) (i32.const 48) (i32.const 9)))
    (if (i32.eq (global.get $ticks) (i32.const 3))
      (then (drop (call $sleep (i64.const 300))))
      (else (drop (call $set_timer (i64.const 100))))))

  (func (export "catmsim_on_wake")
    (call $log (i32.const 1) (i32.const 80) (i32.const 7))
    (drop (call $send (i32.const 64) (i32.const 10) (i32.const 0) (i32.const 0)))
    (drop (call $set_timer (i64.const 100))))

  (func (export "catmsim_on_c2d") (param $body i32) (param $len i32) (param i32 i32) (result i32)
    (if (result i32) (i32.and (i32.gt_s (local.get $len) (i32.const 0))
                              (i32.eq (i32.load8_u (local.get $body)) (i32.const 114)))
      (then (i32.const 2))
      (else (i32.const 0))))

  (func (export "catmsim_on_method") (param i32 i32) (param $payload i32) (param $len i32) (result i32)
    (drop (call $respond (local.get $payload) (local.get $len)))
    (i32.const 201))

  (func (export "catmsim_on_desired") (param i32 i32 i64)
    (drop (call $report (i32.const 96) (i32.const 13))))
)
