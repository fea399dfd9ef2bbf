//! Any client body, for every provider kind: inspection and translation return a value or an
//! error, never a panic.
#![no_main]

use gateway_core::config::{AzureSettings, AzureUrlForm, Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::{inspect, prepare, ClientApi, Target};
use libfuzzer_sys::fuzz_target;

const KINDS: [ProviderKind; 4] = [ProviderKind::Openai, ProviderKind::Anthropic, ProviderKind::Gemini, ProviderKind::AzureOpenai];

fuzz_target!(|body: &[u8]| {
    let _ = inspect(ClientApi::OpenAiChat, body);
    let defaults = Defaults::default();
    for kind in KINDS {
        let mut provider = ProviderConfig { name: "p".into(), kind, cluster: "c".into(), credential: None, path_prefix: None, settings: Default::default() };
        // Ignored by other kinds; without an API version every Azure attempt is a config error.
        provider.settings.azure = Some(AzureSettings { url_form: AzureUrlForm::Deployment, api_version: Some("2024-10-21".into()) });
        let target = Target { provider: &provider, model: "m", defaults: &defaults, created_unix: 0 };
        let _ = prepare(ClientApi::OpenAiChat, &target, body);
    }
});
