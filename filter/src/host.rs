//! Panic-free wrappers over the proxy-wasm host calls the filter uses.
//!
//! The SDK's trait helpers `unwrap()` every host status and its string getters panic on
//! non-UTF-8 header values; a panic kills the VM for every request on the worker, so all
//! host access goes through here and degrades to "absent" instead.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

/// A request or response header, read as bytes and decoded lossily (clients control them).
pub fn header(map: MapType, name: &str) -> Option<String> {
    match hostcalls::get_map_value_bytes(map, name) {
        Ok(Some(v)) => Some(String::from_utf8_lossy(&v).into_owned()),
        _ => None,
    }
}

/// Every header name in `map`, lower-case as Envoy stores them.
pub fn header_names(map: MapType) -> Vec<String> {
    match hostcalls::get_map_bytes(map) {
        Ok(pairs) => pairs.into_iter().map(|(k, _)| k).collect(),
        Err(_) => Vec::new(),
    }
}

/// Every header of `map` in one host call (cheaper than several single lookups), names
/// lower-case as Envoy stores them.
pub fn headers(map: MapType) -> Vec<(String, Vec<u8>)> {
    hostcalls::get_map_bytes(map).unwrap_or_default()
}

/// The first value of `name` in `pairs`, as [`header`] would return it.
pub fn find<'a>(pairs: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

/// [`find`] decoded lossily, like [`header`].
pub fn find_string(pairs: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    find(pairs, name).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Replaces (or adds) a header.
pub fn set_header(map: MapType, name: &str, value: &str) {
    if hostcalls::set_map_value(map, name, Some(value)).is_err() {
        log::warn!("could not set header {name}");
    }
}

/// Removes a header; absent headers are fine.
pub fn remove_header(map: MapType, name: &str) {
    let _ = hostcalls::remove_map_value(map, name);
}

/// The first `size` bytes of a body buffer (the whole buffered body when paused with buffering).
pub fn body(kind: BufferType, size: usize) -> Vec<u8> {
    match hostcalls::get_buffer(kind, 0, size) {
        Ok(Some(b)) => b,
        _ => Vec::new(),
    }
}

/// Replaces the first `size` bytes of a body buffer with `value`.
pub fn set_body(kind: BufferType, size: usize, value: &[u8]) -> bool {
    hostcalls::set_buffer(kind, 0, size, value).is_ok()
}

/// A property of the stream (filter state, xds attributes...) as raw bytes.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).unwrap_or_default()
}

/// A property that Envoy renders as a string.
pub fn property_string(path: &[&str]) -> Option<String> {
    property(path).and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.is_empty())
}

/// Stores a value in the request's filter state, readable by later filters and upstream filters.
pub fn set_property(path: &[&str], value: &[u8]) -> bool {
    hostcalls::set_property(path.to_vec(), Some(value)).is_ok()
}

/// Ends the request with a local reply in OpenAI's error shape.
///
/// The marker request header tells the HCM `local_reply_config` to keep this body as it is
/// instead of wrapping it like Envoy's own replies.
pub fn send_json_error(status: u16, body: &[u8]) {
    set_header(MapType::HttpRequestHeaders, crate::LOCAL_REPLY_MARKER, "1");
    if hostcalls::send_http_response(u32::from(status), vec![("content-type", "application/json")], Some(body)).is_err()
    {
        log::error!("could not send local reply {status}");
    }
}

/// Ends the request with a local reply the filter composed itself (a success or an error already
/// in the client's shape), with extra headers; the marker keeps `local_reply_config` from
/// rewriting it. `body` is `None` for `HEAD`.
pub fn send_json(status: u16, body: Option<&[u8]>, extra: &[(&str, String)]) {
    set_header(MapType::HttpRequestHeaders, crate::LOCAL_REPLY_MARKER, "1");
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    headers.extend(extra.iter().map(|(n, v)| (*n, v.as_str())));
    if hostcalls::send_http_response(u32::from(status), headers, body).is_err() {
        log::error!("could not send local reply {status}");
    }
}

/// Re-evaluates the route after the cluster header changed (required on later ABI versions).
pub fn clear_route_cache() {
    if let Err(status) = hostcalls::call_foreign_function("clear_route_cache", None) {
        log::debug!("clear_route_cache unavailable: {status:?}");
    }
}

/// Wall-clock Unix seconds and nanoseconds, zero if the host cannot tell.
pub fn now() -> (u64, u128) {
    match hostcalls::get_current_time().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
        Some(d) => (d.as_secs(), d.as_nanos()),
        None => (0, 0),
    }
}
