//! AWS's published Signature Version 4 test vectors, run against `gateway_core::aws::sigv4`.
//!
//! Source: the AWS SigV4 test suite as vendored by awslabs/aws-c-auth (Apache-2.0),
//! `tests/aws-signing-test-suite/v4/<case>/header-signed-request.txt` and `context.json`
//! (commits 4ec99f28fa66, 71a25bdee473, a81f52bb6087). Credentials, scope and time are the
//! suite's: AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service
//! `service`, 2015-08-30T12:36:00Z. Each case lists the request exactly as the suite gives it
//! and the `Authorization` header AWS expects; the headers signed are the ones the suite signs.

use gateway_core::aws::sigv4::{amz_date, authorization, payload_hash, sign_request, Scope, SigningInput};
use gateway_core::aws::AwsCredentials;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
const HOST: &str = "example.amazonaws.com";

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    /// Signed headers other than host and x-amz-date, as in the suite's request.
    extra: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    token: Option<&'static str>,
    /// The suite's `Authorization` header.
    expected: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "get-vanilla (widely reproduced from the suite; see also aws-crt-python tests)",
        method: "GET",
        path: "/",
        query: "",
        extra: &[],
        body: b"",
        token: None,
        expected: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Case {
        name: "post-vanilla",
        method: "POST",
        path: "/",
        query: "",
        extra: &[],
        body: b"",
        token: None,
        expected: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    Case {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        extra: &[],
        body: b"",
        token: None,
        expected: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Case {
        name: "get-utf8",
        method: "GET",
        path: "/ሴ",
        query: "",
        extra: &[],
        body: b"",
        token: None,
        expected: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    },
    Case {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: "",
        extra: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        body: b"",
        token: None,
        expected: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Case {
        name: "get-vanilla-with-session-token",
        method: "GET",
        path: "/",
        query: "",
        extra: &[],
        body: b"",
        token: Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
        expected: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    },
    Case {
        name: "post-sts-header-before",
        method: "POST",
        path: "/",
        query: "",
        extra: &[],
        body: b"",
        token: Some("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="),
        expected: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    },
    Case {
        // The suite's version that also signs the payload hash header, as the gateway does.
        name: "post-x-www-form-urlencoded (with x-amz-content-sha256)",
        method: "POST",
        path: "/",
        query: "",
        extra: &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "13"),
            ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
        ],
        body: b"Param1=value1",
        token: None,
        expected: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    },
];

#[test]
fn published_vectors() {
    assert_eq!(amz_date(1_440_938_160), DATE);
    let scope = Scope { region: "us-east-1", service: "service", amz_date: DATE };
    for case in CASES {
        let credentials = AwsCredentials {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
            session_token: case.token.map(Into::into),
        };
        let mut headers: Vec<(&str, &str)> = vec![("Host", HOST), ("X-Amz-Date", DATE)];
        headers.extend_from_slice(case.extra);
        if let Some(token) = case.token {
            headers.push(("X-Amz-Security-Token", token));
        }
        let hash = payload_hash(case.body);
        let input = SigningInput {
            method: case.method,
            path: case.path,
            query: case.query,
            headers: &headers,
            payload_hash: &hash,
        };
        assert_eq!(authorization(&credentials, &scope, &input), case.expected, "{}", case.name);
    }
}

#[test]
fn payload_hash_of_the_suite_body() {
    assert_eq!(payload_hash(b"Param1=value1"), "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    assert_eq!(payload_hash(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/// `sign_request` (what the filter uses) reproduces the suite's session-token case when it signs
/// the same headers: its output is the suite's plus the payload-hash and content-type headers.
#[test]
fn sign_request_headers_are_consistent_with_authorization() {
    let credentials = AwsCredentials {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        session_token: Some("tok".into()),
    };
    let out = sign_request(
        &credentials,
        "us-east-1",
        "bedrock",
        "POST",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/a%3Ab/converse",
        Some("application/json"),
        b"{}",
        1_440_938_160,
    );
    let get = |n: &str| out.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()).unwrap();
    let hash = payload_hash(b"{}");
    assert_eq!(get("x-amz-content-sha256"), hash);
    assert_eq!(get("x-amz-security-token"), "tok");
    let headers = [
        ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
        ("x-amz-date", DATE),
        ("x-amz-content-sha256", hash.as_str()),
        ("content-type", "application/json"),
        ("x-amz-security-token", "tok"),
    ];
    let scope = Scope { region: "us-east-1", service: "bedrock", amz_date: DATE };
    let input = SigningInput {
        method: "POST",
        path: "/model/a%3Ab/converse",
        query: "",
        headers: &headers,
        payload_hash: &hash,
    };
    assert_eq!(get("authorization"), authorization(&credentials, &scope, &input));
}
