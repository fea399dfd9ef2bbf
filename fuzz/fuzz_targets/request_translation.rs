//! Any client body, for every provider kind: inspection and translation return a value or an
//! error, never a panic.
#![no_main]

use gateway_core::config::{Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::{inspect, prepare, ClientApi, Target};
use libfuzzer_sys::fuzz_target;

const KINDS: [ProviderKind; 2] = [ProviderKind::Openai, ProviderKind::Anthropic];

fuzz_target!(|body: &[u8]| {
    let _ = inspect(ClientApi::OpenAiChat, body);
    let defaults = Defaults::default();
    for kind in KINDS {
        let provider = ProviderConfig { name: "p".into(), kind, cluster: "c".into(), credential: None, path_prefix: None };
        let target = Target { provider: &provider, model: "m", defaults: &defaults, created_unix: 0 };
        let _ = prepare(ClientApi::OpenAiChat, &target, body);
    }
});
