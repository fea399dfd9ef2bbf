//! AWS plumbing shared by AWS providers: credentials, SigV4 signing and the binary event stream.

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod eventstream;
pub mod sigv4;

/// AWS credentials as the filter receives them: static keys, or temporary ones with a session
/// token (ECS task role, STS). `Debug` never prints the secret parts.
///
/// They travel as one secret string, a JSON document
/// `{"access_key_id": ..., "secret_access_key": ..., "session_token": ...}`: the same shape
/// whether the filter built it from environment variables or the control plane pushed it (from
/// Secrets Manager, or from the task role it refreshes before expiry).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a credential secret could not be used; never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("AWS credentials must be a JSON object with access_key_id and secret_access_key")]
    Malformed,
    #[error("AWS credentials have an empty access_key_id or secret_access_key")]
    Empty,
}

impl AwsCredentials {
    /// Reads the secret string described on the type.
    pub fn from_secret(secret: &str) -> Result<Self, CredentialError> {
        let creds: AwsCredentials =
            serde_json::from_slice(secret.as_bytes()).map_err(|_| CredentialError::Malformed)?;
        if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
            return Err(CredentialError::Empty);
        }
        Ok(AwsCredentials { session_token: creds.session_token.filter(|t| !t.is_empty()), ..creds })
    }

    /// The secret string form (see the type's documentation).
    pub fn to_secret(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// True for AWS region names such as `us-east-1` or `us-gov-west-1`: `^[a-z]{2}(-[a-z]+)+-\d$`.
/// The region becomes part of a host name, so nothing else may pass.
pub fn is_valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else { return false };
    parts.len() >= 3
        && first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && last.len() == 1
        && last.bytes().all(|b| b.is_ascii_digit())
        && parts
            .get(1..parts.len() - 1)
            .unwrap_or_default()
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-4", "il-central-1"] {
            assert!(is_valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "us-east-12",
            "US-east-1",
            "us-east-1.evil.com",
            "us-east-1/",
            "u-east-1",
            "us--1",
            "us-east-x",
            "us_east-1",
            "usa-east-1",
            "us-east-1 ",
        ] {
            assert!(!is_valid_region(bad), "{bad}");
        }
    }

    #[test]
    fn credentials_parse_redact_and_round_trip() {
        let c = AwsCredentials::from_secret(
            r#"{"access_key_id":"AKID","secret_access_key":"SECRET","session_token":"TOKEN"}"#,
        )
        .unwrap();
        assert_eq!(c.session_token.as_deref(), Some("TOKEN"));
        let dbg = format!("{c:?}");
        assert!(dbg.contains("AKID") && !dbg.contains("SECRET") && !dbg.contains("TOKEN"));
        assert_eq!(AwsCredentials::from_secret(&c.to_secret()).unwrap(), c);
        let c =
            AwsCredentials::from_secret(r#"{"access_key_id":"A","secret_access_key":"S","session_token":""}"#).unwrap();
        assert_eq!(c.session_token, None);
        assert_eq!(AwsCredentials::from_secret("sk-plain-key"), Err(CredentialError::Malformed));
        assert_eq!(
            AwsCredentials::from_secret(r#"{"access_key_id":"","secret_access_key":"S"}"#),
            Err(CredentialError::Empty)
        );
        assert!(!CredentialError::Malformed.to_string().contains("sk-plain"));
    }
}
