//! The pushed snapshot in proxy-wasm shared data: the singleton service writes it, every worker
//! reads it when its version changed.
//!
//! Two keys: a small version key, read on every request (a few bytes copied), and the snapshot
//! JSON, read and parsed only when the version key changed. The service writes the snapshot
//! first and the version second, so a worker that sees a new version finds at least that
//! snapshot.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::host;
use crate::state::Shared;

/// Shared-data key holding the published snapshot version as decimal ASCII (empty: none yet).
pub const VERSION_KEY: &str = "ai_gateway.snapshot.version";
/// Shared-data key holding the published snapshot JSON (`gateway_core::snapshot::Snapshot`).
pub const SNAPSHOT_KEY: &str = "ai_gateway.snapshot.json";

/// What a worker VM last saw in shared data. Both root contexts (downstream and upstream) of a
/// VM use it, so a change is parsed once per worker.
#[derive(Default)]
struct Cache {
    seen: Vec<u8>,
    active: Option<Rc<Shared>>,
}

thread_local! {
    // A Wasm VM is single-threaded; this is one cache per VM.
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The configuration for a new request: the newest pushed snapshot if any, else `bootstrap`
/// (the config embedded in the plugin configuration). Costs one small shared-data read when
/// nothing changed. A snapshot that fails to parse is logged and skipped; the previous one stays.
pub fn current(bootstrap: &Rc<Shared>) -> Rc<Shared> {
    CACHE.with(|cell| {
        let Ok(mut cache) = cell.try_borrow_mut() else {
            return Rc::clone(bootstrap);
        };
        let version = match hostcalls::get_shared_data(VERSION_KEY) {
            Ok((Some(v), _)) => v,
            _ => Vec::new(),
        };
        if version != cache.seen && !version.is_empty() {
            let started = host::now().1;
            match hostcalls::get_shared_data(SNAPSHOT_KEY) {
                Ok((Some(json), _)) => match Shared::from_snapshot_json(&json, Rc::clone(&bootstrap.metrics)) {
                    Ok(shared) => {
                        let micros = host::now().1.saturating_sub(started) / 1000;
                        log::info!(
                            "ai_gateway: applied snapshot version {} ({} routes, {} keys, {} bytes) in {micros} us",
                            shared.version,
                            shared.table.config().routes.len(),
                            shared.keys.as_ref().map_or(0, |k| k.len()),
                            json.len()
                        );
                        cache.active = Some(Rc::new(shared));
                    }
                    Err(e) => log::error!("ai_gateway: ignoring pushed snapshot: {e}"),
                },
                _ => log::error!("ai_gateway: snapshot version changed but the snapshot is missing"),
            }
            cache.seen = version;
        }
        match &cache.active {
            Some(active) => Rc::clone(active),
            None => Rc::clone(bootstrap),
        }
    })
}

/// The configuration [`current`] last returned in this VM, without a host call: the upstream
/// filter's context is created after its request's downstream context, which just checked.
pub fn cached(bootstrap: &Rc<Shared>) -> Rc<Shared> {
    CACHE.with(|cell| match cell.try_borrow().ok().and_then(|c| c.active.clone()) {
        Some(active) => active,
        None => Rc::clone(bootstrap),
    })
}

/// Creates both keys if they do not exist yet: the first write of a key cannot be conditional.
pub fn seed() {
    for key in [SNAPSHOT_KEY, VERSION_KEY] {
        if let Ok((None, _)) = hostcalls::get_shared_data(key) {
            if let Err(status) = hostcalls::set_shared_data(key, Some(b""), None) {
                log::warn!("ai_gateway_service: could not seed {key}: {status:?}");
            }
        }
    }
}

/// The version currently published, 0 if none (a restarted service resumes from it).
pub fn published_version() -> u64 {
    match hostcalls::get_shared_data(VERSION_KEY) {
        Ok((Some(v), _)) => std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

/// Publishes a validated snapshot: JSON first, version last. Each write is conditional on the
/// value just read, so a concurrent writer (there should be none) cannot be silently overwritten.
pub fn publish(version: u64, json: &[u8]) -> Result<(), String> {
    cas_write(SNAPSHOT_KEY, json)?;
    cas_write(VERSION_KEY, version.to_string().as_bytes())
}

fn cas_write(key: &str, value: &[u8]) -> Result<(), String> {
    for _ in 0..3 {
        let cas = match hostcalls::get_shared_data(key) {
            Ok((_, cas)) => cas,
            Err(status) => return Err(format!("reading {key}: {status:?}")),
        };
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => return Ok(()),
            Err(Status::CasMismatch) => continue,
            Err(status) => return Err(format!("writing {key}: {status:?}")),
        }
    }
    Err(format!("writing {key}: CAS kept failing"))
}
