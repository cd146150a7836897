// The sensor node example firmware in AssemblyScript: the same logic as
// ../../c/sensornode.c, byte for byte in what it sends, reports and answers
// (the firmware tests hold the two to that), written against catmsim's host
// ABI v1 with static buffers only, so the stub runtime never allocates.
//
// Build with ../build.sh (npm ci, then asc).

@external("catmsim", "send_telemetry")
declare function send_telemetry(body: usize, bodyLen: i32, props: usize, propsLen: i32): i32;
@external("catmsim", "report_properties")
declare function report_properties(patch: usize, len: i32): i32;
@external("catmsim", "method_response")
declare function method_response(body: usize, len: i32): i32;
@external("catmsim", "set_timer")
declare function set_timer(delayMs: i64): i32;
@external("catmsim", "sleep")
declare function device_sleep(durationMs: i64): i32;
@external("catmsim", "sensor")
declare function sensor(id: i32): f64;
@external("catmsim", "log")
declare function host_log(level: i32, msg: usize, len: i32): void;

const FIRMWARE_VERSION = "1.0.0";
const SENSOR_TEMPERATURE: i32 = 0;
const SENSOR_HUMIDITY: i32 = 1;
const MIN_INTERVAL: i32 = 1;
const MAX_INTERVAL: i32 = 86400;
const ALERT_ABOVE: f64 = 30.0;
const LOG_WARN: i32 = 2;

let intervalS: i32 = 30;
let sleepBetween: bool = false;
let seq: i32 = 0;
let c2dCount: i32 = 0;

// out is the one output buffer: every message this firmware writes fits in
// it, and the put functions stop at its end rather than overrun it.
const OUT_CAP: i32 = 192;
const out: usize = memory.data(OUT_CAP);
let outLen: i32 = 0;

// scratch is the bytes to print or send that are not in out: the alert
// property and the log line, written once from string literals.
const scratch: usize = memory.data(64);

function putByte(c: i32): void {
  if (outLen < OUT_CAP) {
    store<u8>(out + <usize>outLen, <u8>c);
    outLen++;
  }
}

// put writes an ASCII literal; AssemblyScript strings are UTF-16, so each
// code unit is one byte here.
function put(s: string): void {
  for (let i = 0; i < s.length; i++) putByte(s.charCodeAt(i));
}

function putUint(v: i64): void {
  const digits = memory.data(20);
  let n = 0;
  do {
    store<u8>(digits + <usize>n, <u8>(48 + <i32>(v % 10)));
    n++;
    v /= 10;
  } while (v > 0 && n < 20);
  while (n > 0) {
    n--;
    putByte(<i32>load<u8>(digits + <usize>n));
  }
}

// putFixed writes x rounded half away from zero to decimals (0 or 1) places,
// or null when it is not a finite number JSON can carry.
function putFixed(x: f64, decimals: i32): void {
  if (!(x > -1e12 && x < 1e12)) {
    put("null");
    return;
  }
  const scale: i64 = decimals > 0 ? 10 : 1;
  const scaled = x * <f64>scale;
  let r = <i64>(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
  if (r < 0) {
    put("-");
    r = -r;
  }
  putUint(r / scale);
  if (decimals > 0) {
    put(".");
    putUint(r % scale);
  }
}

function putBool(b: bool): void {
  put(b ? "true" : "false");
}

// literal copies an ASCII literal to scratch and returns its length.
function literal(s: string): i32 {
  for (let i = 0; i < s.length; i++) store<u8>(scratch + <usize>i, <u8>s.charCodeAt(i));
  return s.length;
}

function isSpace(c: i32): bool {
  return c == 32 || c == 9 || c == 10 || c == 13;
}

function at(p: usize, i: i32): i32 {
  return <i32>load<u8>(p + <usize>i);
}

function equals(s: usize, n: i32, lit: string): bool {
  if (n != lit.length) return false;
  for (let i = 0; i < n; i++) {
    if (at(s, i) != lit.charCodeAt(i)) return false;
  }
  return true;
}

// valueOf returns the offset of the value of key in the JSON object at
// j[0:n) when key is one of its top-level members, or -1.
function valueOf(j: usize, n: i32, key: string): i32 {
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = at(j, i);
    if (c == 34) { // '"'
      const start = ++i;
      while (i < n && at(j, i) != 34) {
        if (at(j, i) == 92) i++; // '\\'
        i++;
      }
      if (i >= n) return -1;
      let k = i + 1;
      while (k < n && isSpace(at(j, k))) k++;
      if (depth == 1 && k < n && at(j, k) == 58 && equals(j + <usize>start, i - start, key)) { // ':'
        k++;
        while (k < n && isSpace(at(j, k))) k++;
        return k < n ? k : -1;
      }
    } else if (c == 123 || c == 91) { // '{' '['
      depth++;
    } else if (c == 125 || c == 93) { // '}' ']'
      depth--;
    }
  }
  return -1;
}

// uintAt parses the non-negative JSON integer at j[i:n), or returns -1 when
// there is none or it is above 999999999.
function uintAt(j: usize, n: i32, i: i32): i32 {
  if (i < 0) return -1;
  let v = 0;
  let digits = 0;
  while (i < n && at(j, i) >= 48 && at(j, i) <= 57) {
    if (++digits > 9) return -1;
    v = v * 10 + (at(j, i) - 48);
    i++;
  }
  if (digits == 0) return -1;
  if (i < n && (at(j, i) == 46 || at(j, i) == 101 || at(j, i) == 69)) return -1; // '.' 'e' 'E'
  return v;
}

// boolAt parses the JSON boolean at j[i:n): 1, 0, or -1 when there is none.
function boolAt(j: usize, n: i32, i: i32): i32 {
  if (i < 0) return -1;
  if (n - i >= 4 && equals(j + <usize>i, 4, "true")) return 1;
  if (n - i >= 5 && equals(j + <usize>i, 5, "false")) return 0;
  return -1;
}

function validInterval(v: i32): bool {
  return v >= MIN_INTERVAL && v <= MAX_INTERVAL;
}

function reportConfig(): void {
  outLen = 0;
  put("{\"interval\":");
  putUint(intervalS);
  put(",\"sleep\":");
  putBool(sleepBetween);
  put("}");
  report_properties(out, outLen);
}

function schedule(): void {
  if (sleepBetween) {
    device_sleep(<i64>intervalS * 1000);
  } else {
    set_timer(<i64>intervalS * 1000);
  }
}

function reading(): void {
  const t = sensor(SENSOR_TEMPERATURE);
  const h = sensor(SENSOR_HUMIDITY);
  outLen = 0;
  put("{\"temperature\":");
  putFixed(t, 1);
  put(",\"humidity\":");
  putFixed(h, 0);
  put(",\"seq\":");
  putUint(seq);
  put("}");
  let rc: i32;
  if (t > ALERT_ABOVE) {
    rc = send_telemetry(out, outLen, scratch, literal("temperatureAlert\0true"));
  } else {
    rc = send_telemetry(out, outLen, 0, 0);
  }
  if (rc != 0) host_log(LOG_WARN, scratch, literal("telemetry not sent"));
  seq++;
}

export function catmsim_abi_version(): i32 {
  return 1;
}

let inputs: usize = 0;

// catmsim_alloc keeps one heap block for the current call's inputs and
// resizes it on each request; the host asks once per call.
export function catmsim_alloc(size: i32): usize {
  if (size < 0) return 0;
  inputs = inputs == 0 ? heap.alloc(<usize>size) : heap.realloc(inputs, <usize>size);
  return inputs;
}

export function catmsim_init(): void {
  outLen = 0;
  put("{\"firmware\":\"");
  put(FIRMWARE_VERSION);
  put("\",\"interval\":");
  putUint(intervalS);
  put(",\"sleep\":");
  putBool(sleepBetween);
  put("}");
  report_properties(out, outLen);
  schedule();
}

export function catmsim_on_timer(): void {
  reading();
  schedule();
}

export function catmsim_on_wake(): void {
  reading();
  schedule();
}

export function catmsim_on_c2d(body: usize, bodyLen: i32, props: usize, propsLen: i32): i32 {
  c2dCount++;
  outLen = 0;
  put("{\"c2dCount\":");
  putUint(c2dCount);
  put("}");
  report_properties(out, outLen);
  return 0; // complete
}

export function catmsim_on_method(name: usize, nameLen: i32, payload: usize, payloadLen: i32): i32 {
  outLen = 0;
  if (!equals(name, nameLen, "setInterval")) {
    put("{\"error\":\"unknown method\"}");
    method_response(out, outLen);
    return 404;
  }
  let i = 0;
  while (i < payloadLen && isSpace(at(payload, i))) i++;
  const v = i < payloadLen && at(payload, i) == 123
    ? uintAt(payload, payloadLen, valueOf(payload, payloadLen, "interval"))
    : uintAt(payload, payloadLen, i);
  if (!validInterval(v)) {
    put("{\"error\":\"interval must be 1..86400 seconds\"}");
    method_response(out, outLen);
    return 400;
  }
  intervalS = v;
  if (!sleepBetween) set_timer(<i64>intervalS * 1000);
  reportConfig();
  outLen = 0;
  put("{\"interval\":");
  putUint(intervalS);
  put("}");
  method_response(out, outLen);
  return 200;
}

export function catmsim_on_desired(patch: usize, len: i32, version: i64): void {
  const iv = uintAt(patch, len, valueOf(patch, len, "interval"));
  const sl = boolAt(patch, len, valueOf(patch, len, "sleep"));
  if (iv < 0 && sl < 0) return;
  if (validInterval(iv) && iv != intervalS) {
    intervalS = iv;
    if (!sleepBetween) set_timer(<i64>intervalS * 1000);
  }
  if (sl >= 0) sleepBetween = sl == 1;
  reportConfig();
}
