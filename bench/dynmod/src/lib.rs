//! Spike for issue 16: the AI gateway filter's per-request work on a direct route (scenarios (a)
//! passthrough, (b) translated for Anthropic, (c) the same streamed) as a native Envoy dynamic
//! module (`envoy.filters.http.dynamic_modules`) instead of proxy-wasm, to measure what the
//! proxy-wasm/V8 machinery costs. Not the filter: see `bench/dynmod/README.md` for what it skips.
//!
//! Hand-written FFI against Envoy 1.40's dynamic-module ABI (no SDK crate offline). Hook types
//! were checked against the `DynamicModule::getFunctionPointer` template strings in the Envoy
//! binary; callback argument layouts against the callbacks' disassembly (`objdump -d`).
//!
//! `filter_name` picks the behaviour: `noop` (every hook continues) or `route` (the filter's work).
//! `filter_config` (a `google.protobuf.StringValue`) is the gateway configuration JSON, as the
//! Wasm filter's `configuration`; `noop` ignores it.

#![allow(clippy::missing_safety_doc)]

use std::ffi::c_void;

mod stubs;

use gateway_core::config::GatewayConfig;
use gateway_core::routing::RoutingTable;
use gateway_core::translate::{self, BodyMode, ClientApi, ResponseTranslator, Target};

// --- ABI types (abi.h) -----------------------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    ptr: *const u8,
    length: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    ptr: *const u8,
    length: usize,
}

impl ModuleBuffer {
    fn of(s: &[u8]) -> Self {
        ModuleBuffer { ptr: s.as_ptr(), length: s.len() }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHttpHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

const EMPTY_HEADER: EnvoyHttpHeader =
    EnvoyHttpHeader { key_ptr: std::ptr::null(), key_length: 0, value_ptr: std::ptr::null(), value_length: 0 };

// envoy_dynamic_module_type_http_header_type
const REQUEST_HEADER: u32 = 0;
const RESPONSE_HEADER: u32 = 2;
// envoy_dynamic_module_type_http_body_type
const RECEIVED_REQUEST_BODY: u32 = 0;
const BUFFERED_REQUEST_BODY: u32 = 1;
const RECEIVED_RESPONSE_BODY: u32 = 2;
const BUFFERED_RESPONSE_BODY: u32 = 3;
// The status enums: Continue = 0 for all; headers StopIteration = 1; body StopIterationAndBuffer = 1.
const CONTINUE: u32 = 0;
const STOP_ITERATION: u32 = 1;
const STOP_ITERATION_AND_BUFFER: u32 = 1;

// --- ABI callbacks (exported by the Envoy binary; `nm -D`) ---------------------------------------

extern "C" {
    fn envoy_dynamic_module_callback_http_get_headers_size(filter: *mut c_void, header_type: u32) -> usize;
    fn envoy_dynamic_module_callback_http_get_headers(
        filter: *mut c_void,
        header_type: u32,
        result: *mut EnvoyHttpHeader,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_set_header(
        filter: *mut c_void,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_get_body_chunks_size(filter: *mut c_void, body_type: u32) -> usize;
    fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: *mut c_void,
        body_type: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_get_body_size(filter: *mut c_void, body_type: u32) -> usize;
    fn envoy_dynamic_module_callback_http_drain_body(filter: *mut c_void, body_type: u32, bytes: usize) -> bool;
    fn envoy_dynamic_module_callback_http_append_body(filter: *mut c_void, body_type: u32, data: ModuleBuffer) -> bool;
    fn envoy_dynamic_module_callback_http_received_buffered_request_body(filter: *mut c_void) -> bool;
    fn envoy_dynamic_module_callback_http_received_buffered_response_body(filter: *mut c_void) -> bool;
    fn envoy_dynamic_module_callback_http_clear_route_cache(filter: *mut c_void);
    fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: *const c_void,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        counter_id: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: *mut c_void,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
}

// --- safe wrappers ---------------------------------------------------------------------------

/// The whole header map in one call, copied (as the Wasm filter's one host call copies it).
fn headers(filter: *mut c_void, header_type: u32) -> Vec<(String, Vec<u8>)> {
    unsafe {
        let n = envoy_dynamic_module_callback_http_get_headers_size(filter, header_type);
        let mut raw = vec![EMPTY_HEADER; n];
        if n == 0 || !envoy_dynamic_module_callback_http_get_headers(filter, header_type, raw.as_mut_ptr()) {
            return Vec::new();
        }
        raw.iter()
            .map(|h| {
                let k = std::slice::from_raw_parts(h.key_ptr, h.key_length);
                let v = std::slice::from_raw_parts(h.value_ptr, h.value_length);
                (String::from_utf8_lossy(k).into_owned(), v.to_vec())
            })
            .collect()
    }
}

fn find<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

fn set_header(filter: *mut c_void, header_type: u32, key: &str, value: &[u8]) -> bool {
    unsafe {
        envoy_dynamic_module_callback_http_set_header(
            filter,
            header_type,
            ModuleBuffer::of(key.as_bytes()),
            ModuleBuffer::of(value),
        )
    }
}

fn append_chunks(filter: *mut c_void, body_type: u32, out: &mut Vec<u8>) {
    unsafe {
        let n = envoy_dynamic_module_callback_http_get_body_chunks_size(filter, body_type);
        if n == 0 {
            return;
        }
        let mut chunks = vec![EnvoyBuffer { ptr: std::ptr::null(), length: 0 }; n];
        if envoy_dynamic_module_callback_http_get_body_chunks(filter, body_type, chunks.as_mut_ptr()) {
            for c in &chunks {
                out.extend_from_slice(std::slice::from_raw_parts(c.ptr, c.length));
            }
        }
    }
}

/// The complete body at end of stream: what was buffered plus the last received piece (unless
/// the received piece is the buffer itself, when an earlier filter buffered).
fn whole_body(filter: *mut c_void, request: bool) -> Vec<u8> {
    let (buffered, received) = if request {
        (BUFFERED_REQUEST_BODY, RECEIVED_REQUEST_BODY)
    } else {
        (BUFFERED_RESPONSE_BODY, RECEIVED_RESPONSE_BODY)
    };
    let received_is_buffer = unsafe {
        if request {
            envoy_dynamic_module_callback_http_received_buffered_request_body(filter)
        } else {
            envoy_dynamic_module_callback_http_received_buffered_response_body(filter)
        }
    };
    let mut out = Vec::new();
    append_chunks(filter, buffered, &mut out);
    if !received_is_buffer {
        append_chunks(filter, received, &mut out);
    }
    out
}

/// Replaces the complete body at end of stream (buffered part and last received piece).
fn replace_body(filter: *mut c_void, request: bool, new_body: &[u8]) -> bool {
    let (buffered_type, received_type) = if request {
        (BUFFERED_REQUEST_BODY, RECEIVED_REQUEST_BODY)
    } else {
        (BUFFERED_RESPONSE_BODY, RECEIVED_RESPONSE_BODY)
    };
    unsafe {
        let received_is_buffer = if request {
            envoy_dynamic_module_callback_http_received_buffered_request_body(filter)
        } else {
            envoy_dynamic_module_callback_http_received_buffered_response_body(filter)
        };
        let buffered = envoy_dynamic_module_callback_http_get_body_size(filter, buffered_type);
        if !received_is_buffer {
            let received = envoy_dynamic_module_callback_http_get_body_size(filter, received_type);
            if received > 0 {
                envoy_dynamic_module_callback_http_drain_body(filter, received_type, received);
            }
        }
        if buffered > 0 {
            envoy_dynamic_module_callback_http_drain_body(filter, buffered_type, buffered);
            envoy_dynamic_module_callback_http_append_body(filter, buffered_type, ModuleBuffer::of(new_body))
        } else {
            envoy_dynamic_module_callback_http_append_body(filter, received_type, ModuleBuffer::of(new_body))
        }
    }
}

/// Replaces the piece of a streamed response this callback received (nothing is buffered).
fn replace_received_response_chunk(filter: *mut c_void, size: usize, new_chunk: &[u8]) -> bool {
    unsafe {
        if size > 0 {
            envoy_dynamic_module_callback_http_drain_body(filter, RECEIVED_RESPONSE_BODY, size);
        }
        new_chunk.is_empty()
            || envoy_dynamic_module_callback_http_append_body(
                filter,
                RECEIVED_RESPONSE_BODY,
                ModuleBuffer::of(new_chunk),
            )
    }
}

/// Removes a header (the ABI's `set_header` with a null value).
fn remove_header(filter: *mut c_void, header_type: u32, key: &str) -> bool {
    unsafe {
        envoy_dynamic_module_callback_http_set_header(
            filter,
            header_type,
            ModuleBuffer::of(key.as_bytes()),
            ModuleBuffer { ptr: std::ptr::null(), length: 0 },
        )
    }
}

// --- the module ------------------------------------------------------------------------------

const CLUSTER_HEADER: &str = "x-ai-gateway-cluster";

struct Config {
    route: bool,
    /// Whether to call `clear_route_cache` after setting the cluster header (env
    /// `DYNMOD_CLEAR_ROUTE_CACHE=0` turns it off, to test whether set_header alone re-routes).
    clear_route_cache: bool,
    table: Option<RoutingTable>,
    /// Provider name -> secret, resolved from the environment at config load (as the filter does).
    credentials: Vec<(String, String)>,
    requests_counter: usize,
}

struct Filter {
    config: *const Config,
    request_headers: Vec<(String, Vec<u8>)>,
    translator: Option<Box<dyn ResponseTranslator>>,
    provider: String,
    target_model: String,
    /// How the response body is handled: `None` until the response headers (or not ours).
    mode: Option<BodyMode>,
    /// The provider's `content-length` (buffered responses), to set a new one only if it differs.
    content_length: Option<usize>,
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const std::ffi::c_char {
    // The ABI version string of this Envoy build (`strings envoy | grep '^v0\.'`).
    c"v0.2.0".as_ptr()
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: *const c_void,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    let name = std::slice::from_raw_parts(name.ptr, name.length);
    let route = name == b"route";
    let mut table = None;
    let mut credentials = Vec::new();
    if route {
        let json = std::slice::from_raw_parts(config.ptr, config.length);
        let cfg: GatewayConfig = match serde_json::from_slice(json) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("dynmod: bad gateway config: {e}");
                return std::ptr::null();
            }
        };
        for p in &cfg.providers {
            if let Some(gateway_core::config::CredentialSource::Env(var)) = &p.credential {
                if let Ok(secret) = std::env::var(var) {
                    credentials.push((p.name.clone(), secret));
                }
            }
        }
        table = match RoutingTable::new(cfg) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("dynmod: invalid gateway config: {e}");
                return std::ptr::null();
            }
        };
    }
    let mut requests_counter = 0usize;
    let name = b"dynmod_requests";
    let rc = envoy_dynamic_module_callback_http_filter_config_define_counter(
        config_envoy,
        ModuleBuffer::of(name),
        std::ptr::null_mut(),
        0,
        &mut requests_counter,
    );
    if rc != 0 {
        eprintln!("dynmod: define_counter -> {rc}");
    }
    let clear_route_cache = std::env::var("DYNMOD_CLEAR_ROUTE_CACHE").map_or(true, |v| v != "0");
    Box::into_raw(Box::new(Config { route, clear_route_cache, table, credentials, requests_counter })) as *const c_void
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    drop(Box::from_raw(config as *mut Config));
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    _filter_envoy: *mut c_void,
) -> *const c_void {
    Box::into_raw(Box::new(Filter {
        config: config as *const Config,
        request_headers: Vec::new(),
        translator: None,
        provider: String::new(),
        target_model: String::new(),
        mode: None,
        content_length: None,
    })) as *const c_void
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    drop(Box::from_raw(filter as *mut Filter));
}

unsafe fn this<'a>(filter: *const c_void) -> &'a mut Filter {
    &mut *(filter as *mut Filter)
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: *mut c_void,
    filter: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let f = this(filter);
    if !(*f.config).route {
        return CONTINUE;
    }
    // One callback for the whole map, as the Wasm filter's one host call.
    f.request_headers = headers(envoy, REQUEST_HEADER);
    if end_of_stream {
        return CONTINUE; // a bodiless request: not scenario (a)
    }
    STOP_ITERATION
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: *mut c_void,
    filter: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let f = this(filter);
    let config = &*f.config;
    if !config.route {
        return CONTINUE;
    }
    if !end_of_stream {
        return STOP_ITERATION_AND_BUFFER;
    }
    let body = whole_body(envoy, true);
    route(envoy, f, config, &body);
    CONTINUE
}

/// What the Wasm filter's downstream `route` does on a direct route, minus auth, limits, budget
/// and the bookkeeping listed in the README.
unsafe fn route(envoy: *mut c_void, f: &mut Filter, config: &Config, body: &[u8]) {
    let api = ClientApi::OpenAiChat;
    let Ok((facts, parsed)) = translate::inspect_keeping(api, body) else { return };
    let table = config.table.as_ref().expect("route has a table");
    let Ok(selection) = table.select(&facts.model, 0) else { return };
    let target = Target {
        provider: selection.provider,
        model: &selection.target.model,
        defaults: &table.config().defaults,
        created_unix: 1,
    };
    let Ok(prepared) = translate::prepare_parsed(api, &target, body, &[], parsed) else { return };
    // The headers the attempt wants; set only those that differ from the map read at headers.
    let mut wanted: Vec<(&str, String)> = vec![(":path", prepared.path.clone())];
    if let Some((_, secret)) = config.credentials.iter().find(|(p, _)| *p == selection.provider.name) {
        let (h, v) = translate::credential_header(selection.provider.kind, secret);
        wanted.push((h, v));
    }
    for (h, v) in &prepared.headers {
        wanted.push((h, v.clone()));
    }
    let length = prepared.body.as_ref().map_or(body.len(), Vec::len);
    wanted.push(("content-length", length.to_string()));
    for (h, v) in &wanted {
        if find(&f.request_headers, h) != Some(v.as_bytes()) {
            set_header(envoy, REQUEST_HEADER, h, v.as_bytes());
        }
    }
    // Scenario (a)'s route maps bench-gpt to another model name: the passthrough rewrites the body.
    if let Some(new_body) = &prepared.body {
        if !replace_body(envoy, true, new_body) {
            eprintln!("dynmod: could not replace the request body");
        }
    }
    set_header(envoy, REQUEST_HEADER, CLUSTER_HEADER, selection.provider.cluster.as_bytes());
    if config.clear_route_cache {
        envoy_dynamic_module_callback_http_clear_route_cache(envoy);
    }
    envoy_dynamic_module_callback_http_filter_increment_counter(
        envoy,
        config.requests_counter,
        std::ptr::null_mut(),
        0,
        1,
    );
    f.provider = selection.provider.name.clone();
    f.target_model = selection.target.model.clone();
    f.translator = Some(prepared.translator);
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _envoy: *mut c_void,
    _filter: *const c_void,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: *mut c_void,
    filter: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let f = this(filter);
    let Some(translator) = f.translator.as_mut() else { return CONTINUE };
    let headers = headers(envoy, RESPONSE_HEADER);
    let status = find(&headers, ":status")
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let content_type = find(&headers, "content-type").map(|v| String::from_utf8_lossy(v).into_owned());
    let mode = translator.on_headers(status, content_type.as_deref());
    // The three response headers the filter adds on a direct route's answer.
    set_header(envoy, RESPONSE_HEADER, "x-ai-gateway-provider", f.provider.as_bytes());
    set_header(envoy, RESPONSE_HEADER, "x-ai-gateway-model", f.target_model.as_bytes());
    set_header(envoy, RESPONSE_HEADER, "x-ai-gateway-attempts", b"1");
    if end_of_stream {
        return CONTINUE;
    }
    // As the filter: the body may change size. A streamed one loses its length; a buffered one
    // gets the right length when it ends, before the (held) headers leave.
    if mode == BodyMode::Streaming {
        remove_header(envoy, RESPONSE_HEADER, "content-length");
    } else {
        f.content_length =
            find(&headers, "content-length").and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse().ok());
    }
    if let Some(ct) = translator.content_type().filter(|ct| content_type.as_deref() != Some(*ct)) {
        set_header(envoy, RESPONSE_HEADER, "content-type", ct.as_bytes());
    }
    f.mode = Some(mode);
    match mode {
        BodyMode::Streaming => CONTINUE,
        BodyMode::Buffered => STOP_ITERATION,
    }
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    envoy: *mut c_void,
    filter: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let f = this(filter);
    let (Some(mode), Some(t)) = (f.mode, f.translator.as_mut()) else { return CONTINUE };
    if mode == BodyMode::Streaming {
        // Each piece as it comes: translate it and send the output in its place (maybe nothing).
        let mut chunk = Vec::new();
        append_chunks(envoy, RECEIVED_RESPONSE_BODY, &mut chunk);
        let out = t.translate_chunk(&chunk, end_of_stream);
        if out != chunk && !replace_received_response_chunk(envoy, chunk.len(), &out) {
            eprintln!("dynmod: could not rewrite a response chunk");
        }
        return CONTINUE;
    }
    if !end_of_stream {
        return STOP_ITERATION_AND_BUFFER;
    }
    let body = whole_body(envoy, false);
    // Passthrough: Ok(None), the body is unchanged. Translated: the new body and its length.
    // (An `Err` would be an error reply; not done here.)
    if let Ok(Some(new_body)) = t.translate_body(&body) {
        if !replace_body(envoy, false, &new_body) {
            eprintln!("dynmod: could not replace the response body");
        } else if f.content_length != Some(new_body.len()) {
            set_header(envoy, RESPONSE_HEADER, "content-length", new_body.len().to_string().as_bytes());
        }
    }
    std::hint::black_box(t.usage());
    CONTINUE
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: *mut c_void,
    _filter: *const c_void,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _envoy: *mut c_void,
    _filter: *const c_void,
) {
}
