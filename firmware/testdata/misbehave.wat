;; misbehave: a module that keeps the ABI at load and breaks it at run time,
;; one way per entry point, so each test fails a fresh instance its own way.
(module
  (import "catmsim" "send_telemetry" (func $send (param i32 i32 i32 i32) (result i32)))
  (import "catmsim" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok")

  (func $catmsim_abi_version (export "catmsim_abi_version") (result i32) (i32.const 1))
  (func $catmsim_alloc (export "catmsim_alloc") (param $size i32) (result i32) (i32.const 1024))

  ;; init behaves: the instance starts healthy.
  (func $catmsim_init (export "catmsim_init")
    (drop (call $send (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 0))))

  ;; on_timer traps two calls deep, so the stack has frames to show.
  (func $check_sensor (unreachable))
  (func $read_sensor (call $check_sensor))
  (func $catmsim_on_timer (export "catmsim_on_timer") (call $read_sensor))

  ;; on_wake never returns.
  (func $catmsim_on_wake (export "catmsim_on_wake") (loop $forever (br $forever)))

  ;; on_c2d settles with an outcome the ABI does not have.
  (func $catmsim_on_c2d (export "catmsim_on_c2d") (param i32 i32 i32 i32) (result i32) (i32.const 7))

  ;; on_method grows memory by 100 pages (6.25 MiB) and carries on as if
  ;; nothing happened, returning 200.
  (func $catmsim_on_method (export "catmsim_on_method") (param i32 i32 i32 i32) (result i32)
    (drop (memory.grow (i32.const 100)))
    (i32.const 200))

  ;; on_desired sends a body that starts in memory and runs past its end.
  (func $catmsim_on_desired (export "catmsim_on_desired") (param i32 i32 i64)
    (drop (call $send (i32.const 65530) (i32.const 10) (i32.const 0) (i32.const 0))))
)
