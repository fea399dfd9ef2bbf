//! Errors the gateway returns to clients, and how each one is rendered in the client API's shape.

use serde::Serialize;

/// Category of a gateway error; decides the HTTP status and the OpenAI `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or asks for something the target cannot do (400).
    InvalidRequest,
    /// The caller is not authenticated (401).
    Authentication,
    /// The caller may not use this model (403).
    PermissionDenied,
    /// Unknown model, path or resource (404).
    NotFound,
    /// The path exists but not for this method (405).
    MethodNotAllowed,
    /// The request body exceeds the configured limit (413).
    PayloadTooLarge,
    /// The request asks for a protocol upgrade the gateway does not offer (426).
    UpgradeRequired,
    /// Rate limit exhausted (429).
    RateLimited,
    /// Budget exhausted (429, OpenAI's `insufficient_quota`).
    InsufficientQuota,
    /// The gateway itself failed (500).
    Internal,
    /// The provider answered with something the gateway could not understand (502).
    BadGateway,
}

impl ErrorKind {
    /// HTTP status a client receives for this kind of error.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UpgradeRequired => 426,
            ErrorKind::RateLimited | ErrorKind::InsufficientQuota => 429,
            ErrorKind::Internal => 500,
            ErrorKind::BadGateway => 502,
        }
    }

    /// OpenAI's `error.type` for this kind (what the OpenAI SDKs map to exception classes).
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::MethodNotAllowed => "invalid_request_error",
            ErrorKind::PayloadTooLarge | ErrorKind::UpgradeRequired => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::InsufficientQuota => "insufficient_quota",
            ErrorKind::Internal => "server_error",
            ErrorKind::BadGateway => "upstream_error",
        }
    }

    /// Anthropic's `error.type` for this kind (what the Anthropic SDKs map to exception classes).
    pub fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::MethodNotAllowed | ErrorKind::UpgradeRequired => {
                "invalid_request_error"
            }
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::PayloadTooLarge => "request_too_large",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::RateLimited | ErrorKind::InsufficientQuota => "rate_limit_error",
            ErrorKind::Internal | ErrorKind::BadGateway => "api_error",
        }
    }
}

/// An error that ends a request with a client-visible body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request field at fault, when there is one (OpenAI's `param`).
    pub param: Option<String>,
    /// A machine-readable code such as `model_not_found` (OpenAI's `code`).
    pub code: Option<String>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError { kind, message: message.into(), param: None, code: None }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The body in OpenAI's error shape: `{"error":{"message","type","param","code"}}`.
    pub fn to_openai_body(&self) -> Vec<u8> {
        openai_error_body(&self.message, self.kind.openai_type(), self.param.as_deref(), self.code.as_deref())
    }

    /// The body in Anthropic's error shape: `{"type":"error","error":{"type","message"}}`.
    /// Anthropic has no `param`: the field at fault is named in the message instead.
    pub fn to_anthropic_body(&self) -> Vec<u8> {
        match &self.param {
            Some(param) if !self.message.contains(param.as_str()) => {
                anthropic_error_body(&format!("{}: {}", param, self.message), self.kind.anthropic_type())
            }
            _ => anthropic_error_body(&self.message, self.kind.anthropic_type()),
        }
    }

    /// The body in the shape of the API the client called.
    pub fn to_body(&self, api: crate::translate::ClientApi) -> Vec<u8> {
        match api.error_shape() {
            ErrorShape::OpenAi => self.to_openai_body(),
            ErrorShape::Anthropic => self.to_anthropic_body(),
        }
    }
}

/// The error body family a client API expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error":{"message","type","param","code"}}`.
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}`.
    Anthropic,
}

#[derive(Serialize)]
struct AnthropicErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: AnthropicErrorBody<'a>,
}

#[derive(Serialize)]
struct AnthropicErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// Anthropic's error type for an HTTP status, for errors that arrive without one.
pub fn anthropic_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// An OpenAI-shaped error body (Envoy's own local replies: no upstream, timeout, too large) in
/// Anthropic's shape; `None` when `body` is not an OpenAI error (already Anthropic-shaped, say).
pub fn openai_error_to_anthropic(status: u16, body: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
        #[serde(rename = "type", default)]
        kind: Option<serde_json::Value>,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default)]
        message: Option<String>,
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    if envelope.kind.is_some() {
        return None;
    }
    let message = envelope.error.message.filter(|m| !m.is_empty()).unwrap_or_else(|| format!("HTTP {status}"));
    Some(anthropic_error_body(&message, anthropic_type_for_status(status)))
}

/// Renders an Anthropic-shaped error body; shared by gateway errors and translated provider errors.
pub fn anthropic_error_body(message: &str, kind: &str) -> Vec<u8> {
    let envelope = AnthropicErrorEnvelope { kind: "error", error: AnthropicErrorBody { kind, message } };
    serde_json::to_vec(&envelope)
        .unwrap_or_else(|_| br#"{"type":"error","error":{"type":"api_error","message":"internal error"}}"#.to_vec())
}

#[derive(Serialize)]
struct OpenAiErrorEnvelope<'a> {
    error: OpenAiErrorBody<'a>,
}

#[derive(Serialize)]
struct OpenAiErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// Renders an OpenAI-shaped error body; shared by gateway errors and translated provider errors.
pub fn openai_error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Vec<u8> {
    let envelope = OpenAiErrorEnvelope { error: OpenAiErrorBody { message, kind, param, code } };
    // Serialising plain strings into a Vec cannot fail; the fallback keeps this panic-free anyway.
    serde_json::to_vec(&envelope).unwrap_or_else(|_| {
        br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shape_has_all_four_fields() {
        let err = GatewayError::new(ErrorKind::NotFound, "model 'x' not found")
            .with_code("model_not_found")
            .with_param("model");
        let v: serde_json::Value = serde_json::from_slice(&err.to_openai_body()).unwrap();
        assert_eq!(v["error"]["message"], "model 'x' not found");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(err.status(), 404);
    }

    #[test]
    fn envoy_replies_are_reshaped_for_anthropic_clients() {
        let openai = br#"{"error":{"message":"upstream connect error","type":"server_error","param":null,"code":"upstream_unavailable"}}"#;
        let v: serde_json::Value = serde_json::from_slice(&openai_error_to_anthropic(503, openai).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "upstream connect error"}})
        );
        let already = GatewayError::new(ErrorKind::NotFound, "x").to_anthropic_body();
        assert_eq!(openai_error_to_anthropic(404, &already), None);
        assert_eq!(openai_error_to_anthropic(502, b"<html>"), None);
    }

    #[test]
    fn anthropic_shape_names_the_param_and_maps_the_type() {
        let err = GatewayError::invalid("field required").with_param("max_tokens");
        let v: serde_json::Value = serde_json::from_slice(&err.to_anthropic_body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: field required"}})
        );
        for (kind, expected) in [
            (ErrorKind::NotFound, "not_found_error"),
            (ErrorKind::PayloadTooLarge, "request_too_large"),
            (ErrorKind::Authentication, "authentication_error"),
            (ErrorKind::PermissionDenied, "permission_error"),
            (ErrorKind::RateLimited, "rate_limit_error"),
            (ErrorKind::BadGateway, "api_error"),
        ] {
            let v: serde_json::Value =
                serde_json::from_slice(&GatewayError::new(kind, "m").to_anthropic_body()).unwrap();
            assert_eq!(v["error"]["type"], expected);
            assert_eq!(v["type"], "error");
        }
        let err = GatewayError::new(ErrorKind::NotFound, "nope");
        let body = err.to_body(crate::translate::ClientApi::AnthropicMessages);
        assert_eq!(body, err.to_anthropic_body());
        assert_eq!(err.to_body(crate::translate::ClientApi::OpenAiChat), err.to_openai_body());
        assert_eq!(err.to_body(crate::translate::ClientApi::OpenAiEmbeddings), err.to_openai_body());
    }
}
