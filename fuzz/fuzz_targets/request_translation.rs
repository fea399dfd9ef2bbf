//! Any client body, for every provider kind: inspection and translation return a value or an
//! error, never a panic.
#![no_main]

use gateway_core::config::{AzureSettings, AzureUrlForm, BedrockSettings, Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::{inspect, prepare, ClientApi, Target};
use libfuzzer_sys::fuzz_target;

const APIS: [ClientApi; 6] = [
    ClientApi::OpenAiChat,
    ClientApi::AnthropicMessages,
    ClientApi::OpenAiEmbeddings,
    ClientApi::AnthropicCountTokens,
    ClientApi::OpenAiResponses,
    ClientApi::OpenAiResponsesInputTokens,
];

const KINDS: [ProviderKind; 5] = [
    ProviderKind::Openai,
    ProviderKind::Anthropic,
    ProviderKind::Gemini,
    ProviderKind::AzureOpenai,
    ProviderKind::Bedrock,
];

fuzz_target!(|body: &[u8]| {
    for api in APIS {
        let _ = inspect(api, body);
    }
    // The local token count estimate reads any body too.
    let _ = gateway_core::translate::count_tokens::estimate(body);
    let _ = gateway_core::translate::responses::estimate_body(body);
    let defaults = Defaults::default();
    for kind in KINDS {
        let mut provider = ProviderConfig {
            name: "p".into(),
            kind,
            cluster: "c".into(),
            credential: None,
            path_prefix: None,
            settings: Default::default(),
        };
        // Ignored by other kinds; without an API version every Azure attempt is a config error.
        provider.settings.azure =
            Some(AzureSettings { url_form: AzureUrlForm::Deployment, api_version: Some("2024-10-21".into()) });
        provider.settings.bedrock = Some(BedrockSettings { region: "us-east-1".into(), ..Default::default() });
        // "m" is Converse on Bedrock; a Claude id takes InvokeModel with the Anthropic codec.
        for model in ["m", "anthropic.claude-sonnet-4-5"] {
            let target = Target { provider: &provider, model, defaults: &defaults, created_unix: 0 };
            for api in APIS {
                let _ = prepare(api, &target, body);
            }
        }
    }
});
