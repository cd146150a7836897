// sensornode is a sensor node written as catmsim firmware (host ABI v1), in
// freestanding C: no libc, no allocator, every buffer static and bounded.
//
// Every interval it reads the temperature and humidity sensors and sends
//
//	{"temperature":21.3,"humidity":45,"seq":0}
//
// with the application property temperatureAlert=true above 30 °C. On init it
// reports its firmware version and configuration. The direct method
// setInterval (payload 60 or {"interval":60}) and the desired properties
// interval and sleep change its configuration, which it reports back. It
// completes every cloud-to-device message and reports how many it received.
// With sleep on, it sleeps (disconnected, radio off) between readings instead
// of staying connected with a timer.
//
// ../assemblyscript/assembly/index.ts is the same logic in
// AssemblyScript; the firmware tests hold the two to the same bytes.
//
// Build with ./build.sh (clang and wasm-ld, wasm32).

typedef unsigned char u8;
typedef int i32;
typedef unsigned int u32;
typedef long long i64;

#define IMPORT(name) __attribute__((import_module("catmsim"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

IMPORT(send_telemetry) i32 send_telemetry(const u8 *body, i32 body_len, const u8 *props, i32 props_len);
IMPORT(report_properties) i32 report_properties(const u8 *patch, i32 len);
IMPORT(method_response) i32 method_response(const u8 *body, i32 len);
IMPORT(set_timer) i32 set_timer(i64 delay_ms);
IMPORT(sleep) i32 device_sleep(i64 duration_ms);
IMPORT(sensor) double sensor(i32 id);
IMPORT(log) void host_log(i32 level, const u8 *msg, i32 len);

#define FIRMWARE_VERSION "1.0.0"
#define SENSOR_TEMPERATURE 0
#define SENSOR_HUMIDITY 1
#define MIN_INTERVAL 1
#define MAX_INTERVAL 86400
#define ALERT_ABOVE 30.0
#define LOG_WARN 2

static i32 interval_s = 30;
static i32 sleep_between = 0;
static i32 seq = 0;
static i32 c2d_count = 0;

// out is the one output buffer: every message this firmware writes fits in it,
// and put stops at its end rather than overrun it.
static u8 out[192];
static i32 out_len;

static void put(const char *s) {
	while (*s && out_len < (i32)sizeof out) out[out_len++] = (u8)*s++;
}

static void put_uint(i64 v) {
	u8 digits[20];
	i32 n = 0;
	do {
		digits[n++] = (u8)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < (i32)sizeof digits);
	while (n > 0 && out_len < (i32)sizeof out) out[out_len++] = digits[--n];
}

// put_fixed writes x rounded half away from zero to decimals (0 or 1) places,
// or null when it is not a finite number JSON can carry.
static void put_fixed(double x, i32 decimals) {
	if (!(x > -1e12 && x < 1e12)) {
		put("null");
		return;
	}
	i64 scale = decimals > 0 ? 10 : 1;
	double scaled = x * (double)scale;
	i64 r = (i64)(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
	if (r < 0) {
		put("-");
		r = -r;
	}
	put_uint(r / scale);
	if (decimals > 0) {
		put(".");
		put_uint(r % scale);
	}
}

static void put_bool(i32 b) { put(b ? "true" : "false"); }

static i32 is_space(u8 c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static i32 equals(const u8 *s, i32 n, const char *lit) {
	i32 i = 0;
	for (; i < n; i++) {
		if (lit[i] == 0 || s[i] != (u8)lit[i]) return 0;
	}
	return lit[i] == 0;
}

// value_of returns the offset of the value of key in the JSON object j[0:n)
// when key is one of its top-level members, or -1.
static i32 value_of(const u8 *j, i32 n, const char *key) {
	i32 depth = 0;
	for (i32 i = 0; i < n; i++) {
		u8 c = j[i];
		if (c == '"') {
			i32 start = ++i;
			while (i < n && j[i] != '"') {
				if (j[i] == '\\') i++;
				i++;
			}
			if (i >= n) return -1;
			i32 k = i + 1;
			while (k < n && is_space(j[k])) k++;
			if (depth == 1 && k < n && j[k] == ':' && equals(j + start, i - start, key)) {
				k++;
				while (k < n && is_space(j[k])) k++;
				return k < n ? k : -1;
			}
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return -1;
}

// uint_at parses the non-negative JSON integer at j[i:n), or returns -1 when
// there is none or it is above 999999999.
static i32 uint_at(const u8 *j, i32 n, i32 i) {
	if (i < 0) return -1;
	i32 v = 0, digits = 0;
	while (i < n && j[i] >= '0' && j[i] <= '9') {
		if (++digits > 9) return -1;
		v = v * 10 + (j[i] - '0');
		i++;
	}
	if (digits == 0) return -1;
	if (i < n && (j[i] == '.' || j[i] == 'e' || j[i] == 'E')) return -1;
	return v;
}

// bool_at parses the JSON boolean at j[i:n): 1, 0, or -1 when there is none.
static i32 bool_at(const u8 *j, i32 n, i32 i) {
	if (i < 0) return -1;
	if (n - i >= 4 && equals(j + i, 4, "true")) return 1;
	if (n - i >= 5 && equals(j + i, 5, "false")) return 0;
	return -1;
}

static i32 valid_interval(i32 v) { return v >= MIN_INTERVAL && v <= MAX_INTERVAL; }

static void report_config(void) {
	out_len = 0;
	put("{\"interval\":");
	put_uint(interval_s);
	put(",\"sleep\":");
	put_bool(sleep_between);
	put("}");
	report_properties(out, out_len);
}

static void schedule(void) {
	if (sleep_between) {
		device_sleep((i64)interval_s * 1000);
	} else {
		set_timer((i64)interval_s * 1000);
	}
}

static void reading(void) {
	double t = sensor(SENSOR_TEMPERATURE);
	double h = sensor(SENSOR_HUMIDITY);
	out_len = 0;
	put("{\"temperature\":");
	put_fixed(t, 1);
	put(",\"humidity\":");
	put_fixed(h, 0);
	put(",\"seq\":");
	put_uint(seq);
	put("}");
	static const char alert[] = "temperatureAlert\0true";
	i32 rc = t > ALERT_ABOVE ? send_telemetry(out, out_len, (const u8 *)alert, sizeof alert - 1)
	                         : send_telemetry(out, out_len, 0, 0);
	if (rc != 0) {
		static const char msg[] = "telemetry not sent";
		host_log(LOG_WARN, (const u8 *)msg, sizeof msg - 1);
	}
	seq++;
}

EXPORT(catmsim_abi_version) i32 catmsim_abi_version(void) { return 1; }

extern u8 __heap_base;

// catmsim_alloc hands the host the memory above the static data for the
// current call's inputs, growing the memory when they do not fit; the host
// asks once per call, so the same region serves every call.
EXPORT(catmsim_alloc) u8 *catmsim_alloc(i32 size) {
	u32 base = (u32)&__heap_base;
	u32 need = base + (u32)size;
	u32 have = (u32)__builtin_wasm_memory_size(0) * 65536u;
	if (size < 0 || need < base) return 0;
	if (need > have && __builtin_wasm_memory_grow(0, (need - have + 65535u) / 65536u) < 0) return 0;
	return &__heap_base;
}

EXPORT(catmsim_init) void catmsim_init(void) {
	out_len = 0;
	put("{\"firmware\":\"" FIRMWARE_VERSION "\",\"interval\":");
	put_uint(interval_s);
	put(",\"sleep\":");
	put_bool(sleep_between);
	put("}");
	report_properties(out, out_len);
	schedule();
}

EXPORT(catmsim_on_timer) void catmsim_on_timer(void) {
	reading();
	schedule();
}

EXPORT(catmsim_on_wake) void catmsim_on_wake(void) {
	reading();
	schedule();
}

EXPORT(catmsim_on_c2d) i32 catmsim_on_c2d(const u8 *body, i32 body_len, const u8 *props, i32 props_len) {
	(void)body, (void)body_len, (void)props, (void)props_len;
	c2d_count++;
	out_len = 0;
	put("{\"c2dCount\":");
	put_uint(c2d_count);
	put("}");
	report_properties(out, out_len);
	return 0; // complete
}

EXPORT(catmsim_on_method) i32 catmsim_on_method(const u8 *name, i32 name_len, const u8 *payload, i32 payload_len) {
	out_len = 0;
	if (!equals(name, name_len, "setInterval")) {
		put("{\"error\":\"unknown method\"}");
		method_response(out, out_len);
		return 404;
	}
	i32 i = 0;
	while (i < payload_len && is_space(payload[i])) i++;
	i32 v = i < payload_len && payload[i] == '{' ? uint_at(payload, payload_len, value_of(payload, payload_len, "interval"))
	                                             : uint_at(payload, payload_len, i);
	if (!valid_interval(v)) {
		put("{\"error\":\"interval must be 1..86400 seconds\"}");
		method_response(out, out_len);
		return 400;
	}
	interval_s = v;
	if (!sleep_between) set_timer((i64)interval_s * 1000);
	report_config();
	out_len = 0;
	put("{\"interval\":");
	put_uint(interval_s);
	put("}");
	method_response(out, out_len);
	return 200;
}

EXPORT(catmsim_on_desired) void catmsim_on_desired(const u8 *patch, i32 len, i64 version) {
	(void)version;
	i32 iv = uint_at(patch, len, value_of(patch, len, "interval"));
	i32 sl = bool_at(patch, len, value_of(patch, len, "sleep"));
	if (iv < 0 && sl < 0) return;
	if (valid_interval(iv) && iv != interval_s) {
		interval_s = iv;
		if (!sleep_between) set_timer((i64)interval_s * 1000);
	}
	if (sl >= 0) sleep_between = sl;
	report_config();
}
