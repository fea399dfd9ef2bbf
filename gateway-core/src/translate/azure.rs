//! Azure OpenAI: OpenAI's wire format at Azure's URLs, with Azure's error shape normalised.
//!
//! The request and the successful response are OpenAI's (the passthrough handles them: one copy
//! of that logic); what differs is the path, the credential header (`api-key`, see
//! [`super::credential_header`]) and the error body. URL parts come only from configuration
//! (the route target's model is the deployment, the provider settings give the API version and
//! the URL form), and they are validated character by character so that a route config can never
//! inject a path segment or a query parameter.
//!
//! | setting | upstream path |
//! |---|---|
//! | `url_form: deployment` (default) | `/openai/deployments/{target model}/chat/completions?api-version={api_version}` (`api_version` required) |
//! | `url_form: v1` | `/openai/v1/chat/completions` (`?api-version=` only when `api_version` is set, e.g. `preview`) |
//!
//! Errors: Azure sends OpenAI-like bodies with extra members (`innererror` with content-filter
//! details, `status`), and some errors (401 on a bad key, `DeploymentNotFound`) with only `code`
//! and `message`. The client always gets `{"error":{"message","type","param","code"}}` with the
//! provider's HTTP status; `type` is Azure's when it sent one, else derived from the status; the
//! inner error code (e.g. `ResponsibleAIPolicyViolation`) is appended to the message so that the
//! reason for a content-filter block is not lost.

use serde::Deserialize;
use serde_json::Value;

use crate::config::{AzureSettings, AzureUrlForm, ProviderConfig};
use crate::error::{openai_error_body, ErrorKind, GatewayError};

/// Longest deployment name or API version accepted (Azure's own limit for deployments is 64).
const MAX_NAME_LEN: usize = 64;

/// Checks a deployment name: letters, digits, `-`, `_`, `.`; not starting with `.`.
pub fn validate_deployment(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars || name.starts_with('.') {
        return Err(format!(
            "Azure deployment name '{}' is invalid: 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.', not starting with '.'",
            name.escape_default()
        ));
    }
    Ok(())
}

/// Checks an `api-version` value: letters, digits, `-` and `.` (e.g. `2024-10-21`, `preview`).
pub fn validate_api_version(version: &str) -> Result<(), String> {
    let ok_chars = version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    if version.is_empty() || version.len() > MAX_NAME_LEN || !ok_chars {
        return Err(format!(
            "Azure api_version '{}' is invalid: letters, digits, '-' and '.' only",
            version.escape_default()
        ));
    }
    Ok(())
}

fn settings(provider: &ProviderConfig) -> AzureSettings {
    provider.settings.azure.clone().unwrap_or_default()
}

/// Validates a provider's Azure settings at config load.
pub fn validate_provider(provider: &ProviderConfig) -> Result<(), String> {
    let s = settings(provider);
    match (&s.api_version, s.url_form) {
        (Some(v), _) => validate_api_version(v),
        (None, AzureUrlForm::Deployment) => {
            Err("the deployment URL form needs settings.azure.api_version (e.g. \"2024-10-21\")".to_owned())
        }
        (None, AzureUrlForm::V1) => Ok(()),
    }
}

/// Validates a route target's model for an Azure provider (a deployment name in the deployment form).
pub fn validate_target(provider: &ProviderConfig, model: &str) -> Result<(), String> {
    match settings(provider).url_form {
        AzureUrlForm::Deployment => validate_deployment(model),
        // The v1 form sends the model in the body, where any string is safe.
        AzureUrlForm::V1 => Ok(()),
    }
}

/// The Chat Completions path for `deployment` on `provider`, path prefix included. Invalid
/// configuration is an internal error (500): the client did nothing wrong.
pub fn chat_completions_path(provider: &ProviderConfig, deployment: &str) -> Result<String, GatewayError> {
    operation_path(provider, deployment, "chat/completions")
}

/// The Embeddings path for `deployment` on `provider` (same URL forms as Chat Completions).
pub fn embeddings_path(provider: &ProviderConfig, deployment: &str) -> Result<String, GatewayError> {
    operation_path(provider, deployment, "embeddings")
}

fn operation_path(provider: &ProviderConfig, deployment: &str, operation: &str) -> Result<String, GatewayError> {
    let internal = |m: String| {
        GatewayError::new(ErrorKind::Internal, format!("provider '{}' is misconfigured: {m}", provider.name))
    };
    validate_provider(provider).map_err(internal)?;
    let s = settings(provider);
    let path = match s.url_form {
        AzureUrlForm::Deployment => {
            validate_deployment(deployment).map_err(internal)?;
            format!("/openai/deployments/{deployment}/{operation}")
        }
        AzureUrlForm::V1 => format!("/openai/v1/{operation}"),
    };
    let path = match &s.api_version {
        Some(v) => format!("{path}?api-version={v}"),
        None => path,
    };
    Ok(super::provider_path(provider, &path))
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: AzureError,
}

#[derive(Deserialize)]
struct AzureError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    param: Option<String>,
    /// A string on most errors, a number on some (`"401"` vs `429`).
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    innererror: Option<InnerError>,
}

#[derive(Deserialize)]
struct InnerError {
    #[serde(default)]
    code: Option<String>,
}

/// OpenAI's `error.type` for an HTTP status, when the provider did not name one.
fn type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// An Azure error body in OpenAI's shape (the caller keeps Azure's status). Bodies that are not
/// JSON errors (a proxy's HTML page) are summarised, not echoed.
pub fn translate_error(status: u16, body: &[u8]) -> Vec<u8> {
    let Ok(ErrorEnvelope { error }) = serde_json::from_slice::<ErrorEnvelope>(body) else {
        return openai_error_body(
            &format!("The provider returned HTTP {status} with a body the gateway could not read."),
            type_for_status(status),
            None,
            None,
        );
    };
    let code = match &error.code {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut message =
        error.message.filter(|m| !m.is_empty()).unwrap_or_else(|| format!("The provider returned HTTP {status}."));
    if let Some(inner) = error.innererror.and_then(|i| i.code).filter(|c| !c.is_empty()) {
        if !message.contains(&inner) {
            message = format!("{message} ({inner})");
        }
    }
    let kind = error.kind.filter(|k| !k.is_empty());
    openai_error_body(
        &message,
        kind.as_deref().unwrap_or(type_for_status(status)),
        error.param.as_deref(),
        code.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderSettings;
    use serde_json::json;

    fn provider(form: AzureUrlForm, api_version: Option<&str>, prefix: Option<&str>) -> ProviderConfig {
        ProviderConfig {
            name: "az".into(),
            kind: crate::config::ProviderKind::AzureOpenai,
            cluster: "c".into(),
            credential: None,
            path_prefix: prefix.map(Into::into),
            settings: ProviderSettings {
                azure: Some(AzureSettings { url_form: form, api_version: api_version.map(Into::into) }),
                ..Default::default()
            },
        }
    }

    #[test]
    fn deployment_and_v1_paths() {
        let p = provider(AzureUrlForm::Deployment, Some("2024-12-01-preview"), None);
        assert_eq!(
            chat_completions_path(&p, "gpt-5-nano").unwrap(),
            "/openai/deployments/gpt-5-nano/chat/completions?api-version=2024-12-01-preview"
        );
        let p = provider(AzureUrlForm::V1, None, None);
        assert_eq!(chat_completions_path(&p, "any model/../x?y").unwrap(), "/openai/v1/chat/completions");
        let p = provider(AzureUrlForm::V1, Some("preview"), Some("/proxy/"));
        assert_eq!(chat_completions_path(&p, "m").unwrap(), "/proxy/openai/v1/chat/completions?api-version=preview");
    }

    #[test]
    fn injection_attempts_are_rejected_as_misconfiguration() {
        let p = provider(AzureUrlForm::Deployment, Some("2024-10-21"), None);
        for bad in ["", "../admin", "a/b", "a?x=1", "a#f", "a b", "a%2Fb", ".hidden", "ä", &"x".repeat(65)] {
            let err = chat_completions_path(&p, bad).unwrap_err();
            assert_eq!(err.status(), 500, "{bad}");
            assert!(validate_target(&p, bad).is_err(), "{bad}");
        }
        for bad in ["2024-10-21&x=1", "a/b", "", "v 1", "1?"] {
            let p = provider(AzureUrlForm::Deployment, Some(bad), None);
            assert!(validate_provider(&p).is_err(), "{bad}");
            assert_eq!(chat_completions_path(&p, "ok").unwrap_err().status(), 500);
        }
        assert!(validate_provider(&provider(AzureUrlForm::Deployment, None, None)).is_err());
        assert!(validate_provider(&provider(AzureUrlForm::V1, None, None)).is_ok());
    }

    #[test]
    fn errors_get_openai_shape() {
        let content_filter = json!({"error": {"message": "The response was filtered", "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate": {"filtered": true, "severity": "high"}}}}});
        let out: Value = serde_json::from_slice(&translate_error(400, content_filter.to_string().as_bytes())).unwrap();
        assert_eq!(
            out,
            json!({"error": {"message": "The response was filtered (ResponsibleAIPolicyViolation)", "type": "invalid_request_error", "param": "prompt", "code": "content_filter"}})
        );

        let bad_key = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}});
        let out: Value = serde_json::from_slice(&translate_error(401, bad_key.to_string().as_bytes())).unwrap();
        assert_eq!(out["error"]["type"], "authentication_error");
        assert_eq!(out["error"]["code"], "401");
        assert_eq!(out["error"]["param"], Value::Null);

        let throttled = json!({"error": {"code": 429, "message": "Rate limit"}});
        let out: Value = serde_json::from_slice(&translate_error(429, throttled.to_string().as_bytes())).unwrap();
        assert_eq!(
            out["error"],
            json!({"message": "Rate limit", "type": "rate_limit_error", "param": null, "code": "429"})
        );

        let not_found = json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}});
        let out: Value = serde_json::from_slice(&translate_error(404, not_found.to_string().as_bytes())).unwrap();
        assert_eq!(out["error"]["code"], "DeploymentNotFound");
        assert_eq!(out["error"]["type"], "invalid_request_error");

        let out: Value = serde_json::from_slice(&translate_error(502, b"<html>upstream</html>")).unwrap();
        assert_eq!(out["error"]["type"], "server_error");
        assert!(!out["error"]["message"].as_str().unwrap().contains("html"));
    }
}
