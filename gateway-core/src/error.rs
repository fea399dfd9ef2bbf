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
    /// Rate limit or budget exhausted (429).
    RateLimited,
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
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
            ErrorKind::BadGateway => 502,
        }
    }

    /// OpenAI's `error.type` for this kind (what the OpenAI SDKs map to exception classes).
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::MethodNotAllowed => {
                "invalid_request_error"
            }
            ErrorKind::PayloadTooLarge => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Internal => "server_error",
            ErrorKind::BadGateway => "upstream_error",
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
    serde_json::to_vec(&envelope).unwrap_or_else(|_| br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shape_has_all_four_fields() {
        let err = GatewayError::new(ErrorKind::NotFound, "model 'x' not found").with_code("model_not_found").with_param("model");
        let v: serde_json::Value = serde_json::from_slice(&err.to_openai_body()).unwrap();
        assert_eq!(v["error"]["message"], "model 'x' not found");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(err.status(), 404);
    }
}
