//! Any provider response, buffered or streamed in arbitrary pieces, for every provider kind:
//! translation never panics, and a stream translates to the same bytes however it is split.
#![no_main]

use gateway_core::config::{
    AzureSettings, AzureUrlForm, BedrockApi, BedrockSettings, Defaults, ProviderConfig, ProviderKind,
};
use gateway_core::translate::{prepare, BodyMode, ClientApi, Target};
use libfuzzer_sys::fuzz_target;

const KINDS: [ProviderKind; 5] = [
    ProviderKind::Openai,
    ProviderKind::Anthropic,
    ProviderKind::Gemini,
    ProviderKind::AzureOpenai,
    ProviderKind::Bedrock,
];
const REQUESTS: [(ClientApi, &[u8]); 8] = [
    (ClientApi::OpenAiChat, br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
    (ClientApi::OpenAiChat, br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#),
    (ClientApi::AnthropicMessages, br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#),
    (ClientApi::AnthropicMessages, br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"stream":true}"#),
    (ClientApi::OpenAiEmbeddings, br#"{"model":"m","input":"hi"}"#),
    (ClientApi::OpenAiResponses, br#"{"model":"m","input":"hi","tools":[{"type":"custom","name":"apply_patch"}]}"#),
    (ClientApi::OpenAiResponses, br#"{"model":"m","input":"hi","stream":true}"#),
    (ClientApi::OpenAiResponsesInputTokens, br#"{"model":"m","input":"hi"}"#),
];

fuzz_target!(|input: &[u8]| {
    let Some((&seed, body)) = input.split_first() else { return };
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
        // Bedrock's two APIs for chat: Converse, or InvokeModel (Claude's Anthropic events in an
        // event stream), picked by the input so both decoders are fuzzed.
        let api = if body.len() % 2 == 0 { BedrockApi::Converse } else { BedrockApi::Invoke };
        provider.settings.bedrock = Some(BedrockSettings { region: "us-east-1".into(), api });
        let target = Target { provider: &provider, model: "m", defaults: &defaults, created_unix: 0 };
        for (api, request) in REQUESTS {
            let Ok(whole) = prepare(api, &target, request) else { continue };
            let Ok(split) = prepare(api, &target, request) else { continue };
            let (mut whole, mut split) = (whole.translator, split.translator);
            let status = if seed & 0x80 == 0 { 200 } else { 400 + u16::from(seed & 0x7f) };
            // Bedrock streams are binary AWS event streams, every other provider's are SSE.
            let stream_type =
                if kind == ProviderKind::Bedrock { "application/vnd.amazon.eventstream" } else { "text/event-stream" };
            let content_type = if seed & 1 == 0 { stream_type } else { "application/json" };
            if whole.on_headers(status, Some(content_type)) == BodyMode::Buffered {
                let _ = whole.translate_body(body);
                continue;
            }
            split.on_headers(status, Some(content_type));
            let expected = whole.translate_chunk(body, true);
            let step = usize::from(seed >> 1 & 0x0f) + 1;
            let mut got = Vec::new();
            let mut pieces = body.chunks(step).peekable();
            if pieces.peek().is_none() {
                got.extend(split.translate_chunk(&[], true));
            }
            while let Some(piece) = pieces.next() {
                got.extend(split.translate_chunk(piece, pieces.peek().is_none()));
            }
            assert_eq!(got, expected, "stream translation depends on chunk boundaries");
            assert_eq!(split.usage(), whole.usage());
        }
    }
});
