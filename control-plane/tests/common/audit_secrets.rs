//! Plants credential references and key secrets through every kind of write, for the audit
//! redaction tests (embedded and DynamoDB).

use axum::http::StatusCode;
use control_plane::model::hash_secret;
use serde_json::json;

use super::server::TestApp;

/// Credential references planted in providers: an environment variable and a Secrets Manager ARN.
pub const PLANTED_ENV: &str = "env:AI_GATEWAY_PROVIDER_AUDIT_PLANTED_7C1D";
pub const PLANTED_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit-planted-9f2e";
pub const PLANTED_APPLY: &str = "env:AI_GATEWAY_PROVIDER_AUDIT_APPLIED_3B8A";

/// Creates, updates, rotates, revokes and applies; returns the planted references (and their
/// distinctive parts) and every key secret and hash that existed.
pub async fn exercise(t: &TestApp) -> (Vec<String>, Vec<String>) {
    let ok = |s: StatusCode| assert!(s.is_success(), "{s}");
    let provider = |cred: &str, cluster: &str| json!({"name": "audited", "kind": "openai", "cluster": cluster, "credential": cred});
    ok(t.admin("POST", "/v1/providers", Some(provider(PLANTED_ENV, "c1"))).await.0);
    ok(t.admin("PUT", "/v1/providers/audited", Some(provider(PLANTED_ARN, "c2"))).await.0);
    let route = json!({"model": "audited-model", "targets": [{"provider": "audited", "model": "gpt-4o"}]});
    ok(t.admin("POST", "/v1/routes", Some(route)).await.0);
    let (s, _, key) =
        t.admin("POST", "/v1/keys", Some(json!({"name": "audited-key", "owner": "o", "allowed_models": ["*"]}))).await;
    ok(s);
    let mut secrets = vec![key["secret"].as_str().unwrap().to_string()];
    ok(t.admin("PUT", "/v1/keys/audited-key", Some(json!({"owner": "o2", "allowed_models": ["audited-model"]})))
        .await
        .0);
    for _ in 0..3 {
        let (s, _, rotated) = t.admin("POST", "/v1/keys/audited-key/rotate", Some(json!({"grace_seconds": 30}))).await;
        ok(s);
        secrets.push(rotated["secret"].as_str().unwrap().to_string());
    }
    let doc = json!({"providers": [{"name": "audited", "kind": "openai", "cluster": "c3", "credential": PLANTED_APPLY}],
        "routes": [{"model": "audited-model", "targets": [{"provider": "audited", "model": "gpt-4o-mini"}]}]});
    ok(t.admin("POST", "/v1/apply", Some(doc)).await.0);
    ok(t.admin("POST", "/v1/keys/audited-key/revoke", None).await.0);
    ok(t.admin("DELETE", "/v1/keys/audited-key", None).await.0);
    ok(t.admin("DELETE", "/v1/routes/audited-model", None).await.0);
    ok(t.admin("DELETE", "/v1/providers/audited", None).await.0);
    let hashes: Vec<String> = secrets.iter().map(|s| hash_secret(s)).collect();
    secrets.extend(hashes);
    let planted =
        [PLANTED_ENV, PLANTED_ARN, PLANTED_APPLY, "AUDIT_PLANTED_7C1D", "audit-planted-9f2e", "AUDIT_APPLIED_3B8A"]
            .map(String::from)
            .to_vec();
    (planted, secrets)
}
