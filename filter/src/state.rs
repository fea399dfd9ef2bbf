//! What the root context loads once per configuration (or per pushed snapshot), and the
//! per-request facts the downstream filter hands to the upstream filter through filter state.

use std::collections::HashMap;
use std::rc::Rc;

use gateway_core::routing::RoutingTable;
use gateway_core::snapshot::{KeyIndex, Snapshot};
use gateway_core::validate::Invalid;
use gateway_core::{ClientApi, GatewayConfig};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// Filter-state key (`wasm.` prefixed by Envoy) holding [`RequestInfo`] ([`RequestInfo::encode`]).
pub const REQUEST_INFO_KEY: &str = "ai_gateway.request";

/// Configuration shared by every HTTP context of one root context.
pub struct Shared {
    pub table: RoutingTable,
    /// Provider name → resolved secret. Never logged.
    credentials: HashMap<String, String>,
    /// Virtual keys of a pushed snapshot. `Some` means every request needs a valid key, even
    /// when the list is empty: deleting the last key must close the gateway, not open it.
    /// `None` (bootstrap config, no control plane yet) authenticates nobody.
    pub keys: Option<KeyIndex>,
    /// Snapshot version, or 0 for the bootstrap config.
    pub version: u64,
    /// One per VM, shared by every configuration generation: a metric is defined once.
    pub metrics: Rc<Metrics>,
    /// Objects of the snapshot left out as invalid (the singleton reports them to the control
    /// plane); empty for the bootstrap config, which is all-or-nothing.
    pub rejected: Vec<Invalid>,
}

impl Shared {
    /// Parses and validates the plugin configuration and resolves credentials from the
    /// environment. `lookup` is `std::env::var` in the VM, a map in tests.
    pub fn load(config: &[u8], lookup: impl Fn(&str) -> Option<String>) -> Result<Shared, String> {
        let config =
            GatewayConfig::from_json(config).map_err(|e| format!("invalid gateway configuration JSON: {e}"))?;
        let mut credentials = HashMap::new();
        for provider in &config.providers {
            // `Env` is one variable; `Aws` (Bedrock) reads up to three into one JSON secret.
            if let Some(source) = &provider.credential {
                match source.resolve(&lookup) {
                    Ok(secret) => {
                        credentials.insert(provider.name.clone(), secret);
                    }
                    Err(why) => log::warn!(
                        "provider '{}': {why} (list it in vm_config.environment_variables.host_env_keys); requests go out without a credential",
                        provider.name
                    ),
                }
            }
        }
        let table = RoutingTable::new(config).map_err(|e| format!("invalid gateway configuration: {e}"))?;
        Ok(Shared {
            table,
            credentials,
            keys: None,
            version: 0,
            metrics: Rc::new(Metrics::default()),
            rejected: Vec::new(),
        })
    }

    /// Builds the configuration from a snapshot pushed by the control plane. Credentials come
    /// from the snapshot only (the control plane resolved them), never from Envoy's environment.
    /// Invalid objects are left out ([`Shared::rejected`]), not the whole snapshot.
    pub fn from_snapshot_json(json: &[u8], metrics: Rc<Metrics>) -> Result<Shared, String> {
        let (snapshot, rejected) =
            Snapshot::from_json_pruned(json).map_err(|e| format!("invalid snapshot JSON: {e}"))?;
        Self::build(snapshot, rejected, metrics)
    }

    /// See [`Shared::from_snapshot_json`].
    pub fn from_snapshot(snapshot: Snapshot, metrics: Rc<Metrics>) -> Result<Shared, String> {
        let (snapshot, rejected) = gateway_core::validate::prune_snapshot(snapshot);
        Self::build(snapshot, rejected, metrics)
    }

    /// Builds the configuration from a snapshot `Snapshot::from_json_pruned` already pruned;
    /// `rejected` is what it left out.
    pub fn from_pruned(snapshot: Snapshot, rejected: Vec<Invalid>, metrics: Rc<Metrics>) -> Result<Shared, String> {
        Self::build(snapshot, rejected, metrics)
    }

    fn build(snapshot: Snapshot, rejected: Vec<Invalid>, metrics: Rc<Metrics>) -> Result<Shared, String> {
        let Snapshot { version, config, credentials, keys } = snapshot;
        let credentials = credentials.into_iter().map(|c| (c.provider, c.secret)).collect();
        let (table, more) = RoutingTable::new_pruned(config).map_err(|e| format!("invalid snapshot {version}: {e}"))?;
        let mut rejected = rejected;
        rejected.extend(more);
        Ok(Shared { table, credentials, keys: Some(KeyIndex::new(keys)), version, metrics, rejected })
    }

    pub fn credential(&self, provider: &str) -> Option<&str> {
        self.credentials.get(provider).map(String::as_str)
    }
}

/// Facts about one request, decided downstream and needed by every upstream attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// The model name the client asked for (route key).
    pub model: String,
    /// The provider the downstream filter selected (used if the attempt cannot tell its own).
    pub provider: String,
    /// The selected provider's model name.
    pub target_model: String,
    /// Client API, see [`api_name`].
    pub api: String,
    /// Unix seconds when the request arrived.
    pub created: u64,
    pub stream: bool,
    /// The route has one target and no policy: the attempt reaches the selected provider's own
    /// cluster, once (no retry policy), so the upstream filter needs no property reads to learn
    /// which provider and which attempt it is.
    #[serde(default)]
    pub direct: bool,
    /// Who called (`jwt:<client_id>` or `key:<hash>`), as recorded in filter state for the logs;
    /// carried here so the upstream filter does not read filter state back for accounting.
    #[serde(default)]
    pub caller: Option<String>,
    /// Client headers some providers need ([`gateway_core::translate::FORWARDABLE_CLIENT_HEADERS`]),
    /// captured downstream because the first attempt strips them from the shared header map.
    #[serde(default)]
    pub client_headers: Vec<(String, String)>,
}

impl RequestInfo {
    /// Compact length-prefixed encoding for filter state: every attempt decodes it, and this is
    /// several times cheaper than JSON in the VM. Strings are `<len>:<bytes>`, so any byte in a
    /// client-chosen model name survives.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.model.len() + self.provider.len() + self.target_model.len());
        let mut put = |s: &str| {
            out.extend_from_slice(s.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(s.as_bytes());
        };
        put(&self.model);
        put(&self.provider);
        put(&self.target_model);
        put(&self.api);
        put(&self.created.to_string());
        put(if self.stream { "1" } else { "0" });
        put(if self.direct { "1" } else { "0" });
        put(self.caller.as_deref().unwrap_or(""));
        for (name, value) in &self.client_headers {
            put(name);
            put(value);
        }
        out
    }

    /// Inverse of [`RequestInfo::encode`]; `None` for anything it did not produce.
    pub fn decode(bytes: &[u8]) -> Option<RequestInfo> {
        let mut rest = bytes;
        let mut take = || -> Option<String> {
            let colon = rest.iter().position(|&b| b == b':')?;
            let (len, tail) = rest.split_at(colon);
            let len: usize = std::str::from_utf8(len).ok()?.parse().ok()?;
            let tail = tail.get(1..)?;
            if tail.len() < len {
                return None;
            }
            let (value, next) = tail.split_at(len);
            rest = next;
            String::from_utf8(value.to_vec()).ok()
        };
        let model = take()?;
        let provider = take()?;
        let target_model = take()?;
        let api = take()?;
        let created = take()?.parse().ok()?;
        let stream = match take()?.as_str() {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        let direct = match take()?.as_str() {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        // Callers are never empty: `jwt:` or `key:` and more.
        let caller = Some(take()?).filter(|c| !c.is_empty());
        let mut client_headers = Vec::new();
        while let Some(name) = take() {
            let value = take()?;
            client_headers.push((name, value));
        }
        if !rest.is_empty() {
            return None;
        }
        Some(RequestInfo { model, provider, target_model, api, created, stream, direct, caller, client_headers })
    }
}

/// Stable name of a client API in filter state.
pub fn api_name(api: ClientApi) -> &'static str {
    match api {
        ClientApi::OpenAiChat => "openai_chat",
        ClientApi::AnthropicMessages => "anthropic_messages",
        ClientApi::OpenAiEmbeddings => "openai_embeddings",
        ClientApi::AnthropicCountTokens => "anthropic_count_tokens",
        ClientApi::OpenAiResponses => "openai_responses",
        ClientApi::OpenAiResponsesInputTokens => "openai_responses_input_tokens",
    }
}

/// Inverse of [`api_name`].
pub fn api_from_name(name: &str) -> Option<ClientApi> {
    match name {
        "openai_chat" => Some(ClientApi::OpenAiChat),
        "anthropic_messages" => Some(ClientApi::AnthropicMessages),
        "openai_embeddings" => Some(ClientApi::OpenAiEmbeddings),
        "anthropic_count_tokens" => Some(ClientApi::AnthropicCountTokens),
        "openai_responses" => Some(ClientApi::OpenAiResponses),
        "openai_responses_input_tokens" => Some(ClientApi::OpenAiResponsesInputTokens),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"{"providers":[{"name":"o","kind":"openai","cluster":"c_o","credential":{"env":"OPENAI_API_KEY"}},{"name":"a","kind":"anthropic","cluster":"c_a","credential":{"env":"MISSING"}}],
        "routes":[{"model":"m","targets":[{"provider":"o","model":"gpt"}]}]}"#;

    #[test]
    fn credentials_resolve_and_missing_ones_are_absent() {
        let s = Shared::load(CFG.as_bytes(), |k| (k == "OPENAI_API_KEY").then(|| "sk-test".to_owned())).unwrap();
        assert_eq!(s.credential("o"), Some("sk-test"));
        assert_eq!(s.credential("a"), None);
    }

    #[test]
    fn aws_credentials_resolve_into_one_json_secret() {
        let cfg = r#"{"providers":[{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1"}},
            "credential":{"aws":{"access_key_id_env":"AK","secret_access_key_env":"SK","session_token_env":"ST"}}}],"routes":[]}"#;
        let s = Shared::load(cfg.as_bytes(), |k| Some(format!("{k}-value"))).unwrap();
        let creds = gateway_core::aws::AwsCredentials::from_secret(s.credential("b").unwrap()).unwrap();
        assert_eq!(creds.access_key_id, "AK-value");
        assert_eq!(creds.secret_access_key, "SK-value");
        assert_eq!(creds.session_token.as_deref(), Some("ST-value"));
        // A missing token variable means no usable credential, not one without the token.
        let s = Shared::load(cfg.as_bytes(), |k| (k != "ST").then(|| format!("{k}-value"))).unwrap();
        assert_eq!(s.credential("b"), None);
    }

    #[test]
    fn invalid_configs_are_rejected_with_a_reason() {
        assert!(Shared::load(b"{", |_| None).err().unwrap().contains("JSON"));
        let bad = r#"{"providers":[],"routes":[{"model":"m","targets":[{"provider":"x","model":"y"}]}]}"#;
        assert!(Shared::load(bad.as_bytes(), |_| None).err().unwrap().contains("unknown provider"));
    }

    #[test]
    fn snapshots_carry_keys_and_their_own_credentials() {
        let json = br#"{"version":9,"config":{"providers":[{"name":"o","kind":"openai","cluster":"c_o"}],
            "routes":[{"model":"m","targets":[{"provider":"o","model":"gpt"}]}]},
            "credentials":[{"provider":"o","secret":"sk-pushed"}],
            "keys":[{"hash":"ab","name":"k","allowed_models":["m"],"status":"active"}]}"#;
        let s = Shared::from_snapshot_json(json, Rc::default()).unwrap();
        assert_eq!(s.version, 9);
        assert_eq!(s.credential("o"), Some("sk-pushed"));
        assert_eq!(s.keys.as_ref().map(KeyIndex::len), Some(1));
        // A snapshot without keys still requires keys.
        let empty = br#"{"version":1,"config":{"providers":[],"routes":[]}}"#;
        assert!(Shared::from_snapshot_json(empty, Rc::default()).unwrap().keys.is_some());
        assert!(Shared::load(CFG.as_bytes(), |_| None).unwrap().keys.is_none());
        assert!(Shared::from_snapshot_json(b"garbage", Rc::default()).is_err());
    }

    #[test]
    fn an_invalid_object_leaves_the_rest_of_the_snapshot_applied() {
        // The issue's poisoned snapshot: an azure provider without api_version, a route on it, a
        // Gemini target model that climbs out of its path, and a key revoked in the same version.
        let json = br#"{"version":12,"config":{"providers":[
                {"name":"o","kind":"openai","cluster":"c_o"},
                {"name":"az","kind":"azure_openai","cluster":"c_az"},
                {"name":"g","kind":"gemini","cluster":"c_g"}],
            "routes":[{"model":"m","targets":[{"provider":"o","model":"gpt"}]},
                      {"model":"on-az","targets":[{"provider":"az","model":"d"}]},
                      {"model":"files","targets":[{"provider":"g","model":"models/../../v1/files"}]},
                      {"model":"x","targets":[{"provider":"ghost","model":"y"}]}]},
            "keys":[{"hash":"ab","name":"revoked-now","allowed_models":["*"],"status":"revoked"}]}"#;
        let s = Shared::from_snapshot_json(json, Rc::default()).unwrap();
        assert_eq!(s.version, 12);
        assert!(s.table.route("m").is_some());
        assert!(s.table.route("on-az").is_none() && s.table.route("files").is_none());
        assert_eq!(
            s.keys.as_ref().unwrap().authorize("ab", "m", 0).err(),
            Some(gateway_core::snapshot::KeyDenied::Revoked)
        );
        let got: Vec<(String, &str)> = s.rejected.iter().map(|e| (e.name.clone(), e.field.as_str())).collect();
        assert_eq!(
            got,
            [
                ("az".to_owned(), "settings.azure.api_version"),
                ("on-az".to_owned(), "targets[0].provider"),
                ("files".to_owned(), "targets[0].model"),
                ("x".to_owned(), "targets[0].provider"),
            ]
        );
    }

    #[test]
    fn request_info_round_trips_and_rejects_garbage() {
        let mut info = RequestInfo {
            model: "we:ird\u{e9}1:x".to_owned(),
            provider: "p".to_owned(),
            target_model: String::new(),
            api: "openai_chat".to_owned(),
            created: 1_700_000_000,
            stream: true,
            direct: true,
            caller: Some("key:ab:c".to_owned()),
            client_headers: vec![("anthropic-beta".to_owned(), "a:b, c".to_owned())],
        };
        assert_eq!(RequestInfo::decode(&info.encode()), Some(info.clone()));
        info.client_headers.clear();
        info.stream = false;
        info.direct = false;
        info.caller = None;
        let encoded = info.encode();
        assert_eq!(RequestInfo::decode(&encoded), Some(info));
        for cut in 0..encoded.len() {
            assert_eq!(RequestInfo::decode(&encoded[..cut]), None, "prefix of {cut} bytes");
        }
        assert_eq!(RequestInfo::decode(b"99999999999999999999999:x"), None);
        assert_eq!(RequestInfo::decode(b"{\"model\":\"m\"}"), None);
    }

    #[test]
    fn api_names_round_trip() {
        for api in [
            ClientApi::OpenAiChat,
            ClientApi::AnthropicMessages,
            ClientApi::OpenAiEmbeddings,
            ClientApi::AnthropicCountTokens,
            ClientApi::OpenAiResponses,
            ClientApi::OpenAiResponsesInputTokens,
        ] {
            assert_eq!(api_from_name(api_name(api)), Some(api));
        }
        assert_eq!(api_from_name("nope"), None);
    }
}
