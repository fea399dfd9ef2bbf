//! Bedrock provider configuration: the region is validated when the routing table is built, and
//! AWS credentials resolve from environment variables into the JSON secret the signer reads.

use gateway_core::aws::AwsCredentials;
use gateway_core::config::{CredentialSource, GatewayConfig};
use gateway_core::routing::{ConfigError, RoutingTable};

fn config(provider: &str) -> Result<RoutingTable, ConfigError> {
    let doc = format!(
        r#"{{"providers":[{provider}],"routes":[{{"model":"m","targets":[{{"provider":"b","model":"us.amazon.nova-micro-v1:0"}}]}}]}}"#
    );
    RoutingTable::new(GatewayConfig::from_json(doc.as_bytes()).unwrap())
}

#[test]
fn bedrock_needs_a_valid_region() {
    assert!(
        config(r#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"eu-west-3"}}}"#).is_ok()
    );
    for bad in [
        r#"{"name":"b","kind":"bedrock","cluster":"c"}"#,
        r#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1.attacker.example"}}}"#,
        r#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":""}}}"#,
    ] {
        match config(bad) {
            Err(ConfigError::Invalid(e)) => {
                assert_eq!((e.name.as_str(), e.field.as_str()), ("b", "settings.bedrock.region"));
                assert!(e.reason.contains("region"), "{}", e.reason);
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let dots = r#"{"providers":[{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1"}}}],"routes":[{"model":"m","targets":[{"provider":"b","model":".."}]}]}"#;
    assert!(matches!(
        RoutingTable::new(GatewayConfig::from_json(dots.as_bytes()).unwrap()),
        Err(ConfigError::Invalid(e)) if e.field == "targets[0].model"
    ));
    // Other kinds ignore the member.
    assert!(config(r#"{"name":"b","kind":"openai","cluster":"c"}"#).is_ok());
    // Unknown settings are rejected, not ignored.
    assert!(GatewayConfig::from_json(br#"{"providers":[{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1","host":"x"}}}],"routes":[]}"#).is_err());
}

#[test]
fn credential_sources_old_and_new_forms() {
    let env: CredentialSource = serde_json::from_str(r#"{"env":"OPENAI_API_KEY"}"#).unwrap();
    assert_eq!(env, CredentialSource::Env("OPENAI_API_KEY".into()));
    assert_eq!(env.env_vars(), ["OPENAI_API_KEY"]);
    let aws: CredentialSource = serde_json::from_str(
        r#"{"aws":{"access_key_id_env":"AK","secret_access_key_env":"SK","session_token_env":"ST"}}"#,
    )
    .unwrap();
    assert_eq!(aws.env_vars(), ["AK", "SK", "ST"]);
    let lookup = |k: &str| match k {
        "AK" => Some("AKIDEXAMPLE".to_owned()),
        "SK" => Some("very-secret".to_owned()),
        "ST" => Some("session".to_owned()),
        _ => None,
    };
    let secret = aws.resolve(lookup).unwrap();
    let creds = AwsCredentials::from_secret(&secret).unwrap();
    assert_eq!(
        (creds.access_key_id.as_str(), creds.secret_access_key.as_str(), creds.session_token.as_deref()),
        ("AKIDEXAMPLE", "very-secret", Some("session"))
    );
    let missing = aws.resolve(|k| (k != "ST").then(|| "x".to_owned())).unwrap_err();
    assert!(missing.contains("ST") && !missing.contains('x'), "{missing}");
    let no_token: CredentialSource =
        serde_json::from_str(r#"{"aws":{"access_key_id_env":"AK","secret_access_key_env":"SK"}}"#).unwrap();
    assert_eq!(AwsCredentials::from_secret(&no_token.resolve(lookup).unwrap()).unwrap().session_token, None);
    assert!(serde_json::from_str::<CredentialSource>(r#"{"aws":{"access_key_id_env":"AK"}}"#).is_err());
}
