//! A minimal HTTP/1 client for the CLI subcommands (plain HTTP: the control plane's admin API
//! is reached on loopback or through a TLS-terminating load balancer).

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Talks to one control plane with one token.
pub struct Client {
    base: String,
    token: Option<String>,
    http: HyperClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Percent-encodes a name for use as one path segment.
    pub fn escape(name: &str) -> String {
        name.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// Sends a request; a non-2xx answer becomes `Err` with the API's error message.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Result<Value, String> {
        let mut req = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let bytes = match body {
            Some((ctype, b)) => {
                req = req.header("content-type", ctype);
                b
            }
            None => Vec::new(),
        };
        let req = req.body(Full::new(Bytes::from(bytes))).map_err(|e| e.to_string())?;
        let resp = self.http.request(req).await.map_err(|e| format!("cannot reach {}: {e}", self.base))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        if status == hyper::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let v: Value =
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
        if status.is_success() {
            Ok(v)
        } else {
            let msg =
                v.pointer("/error/message").and_then(Value::as_str).map(String::from).unwrap_or_else(|| v.to_string());
            let param =
                v.pointer("/error/param").and_then(Value::as_str).map(|p| format!(" (field: {p})")).unwrap_or_default();
            Err(format!("{} {msg}{param}", status.as_u16()))
        }
    }
}
