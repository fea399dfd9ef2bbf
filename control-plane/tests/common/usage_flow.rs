//! `ReportUsage` over real gRPC (tonic client), then `GET /v1/usage` over HTTP, on any store.

use std::time::Duration;

use super::server::{wait_for_snapshot, TestApp, ADMIN, READ_ONLY};
use control_plane::client::Client;
use control_plane::watch::{serve, ConfigService, UsageAckMessage, UsageReport, REPORT_USAGE_PATH};
use gateway_core::usage::{utc_day, utc_month, UsageAck, UsageBatch, UsageRow};
use serde_json::{json, Value};
use tonic::codegen::http::uri::PathAndQuery;

const WATCH_TOKEN: &str = "watch-token-for-usage-tests";

/// Calls `ReportUsage` with the given token; the ack decoded from `ack_json`.
pub async fn report(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    batch_json: Vec<u8>,
) -> Result<UsageAck, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let mut req = tonic::Request::new(UsageReport { batch_json });
    if let Some(t) = token {
        req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<UsageReport, UsageAckMessage>::default();
    let resp = client.unary(req, PathAndQuery::from_static(REPORT_USAGE_PATH), codec).await?;
    Ok(serde_json::from_slice(&resp.into_inner().ack_json).expect("ack_json is a UsageAck"))
}

/// The test app's REST router on a real port, and its gRPC ConfigService on another.
async fn start(t: &TestApp) -> (std::net::SocketAddr, String, tokio::sync::oneshot::Sender<()>) {
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc_listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let service = ConfigService::new(t.snapshots.clone(), &[WATCH_TOKEN.to_string()]).with_usage_store(t.store.clone());
    tokio::spawn(serve(grpc_listener, service, async {
        let _ = stop_rx.await;
    }));
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http_listener.local_addr().unwrap();
    let app = t.app.clone();
    tokio::spawn(async move { axum::serve(http_listener, app).await });
    (grpc_addr, format!("http://{http_addr}"), stop_tx)
}

fn row(caller: &str, model: &str, day: &str, requests: u64, input: u64, output: u64) -> UsageRow {
    UsageRow {
        caller: caller.into(),
        provider: "openai".into(),
        model: model.into(),
        day: day.into(),
        requests,
        input,
        output,
        cache_read: 0,
        cache_creation: 0,
        reasoning: 0,
    }
}

/// Prices a model, creates a budgeted key, reports a batch twice over gRPC (counted once) and
/// reads it back over REST by key, caller and for every caller.
pub async fn report_then_read(t: &TestApp) {
    let price = json!({"provider": "openai", "model": "gpt-4o-mini", "input_per_mtok": 0.15, "output_per_mtok": 0.6});
    assert_eq!(t.admin("POST", "/v1/prices", Some(price)).await.0, 201);
    let (s, _, key) = t
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "team-a", "owner": "o", "allowed_models": ["*"], "budget": {"limit_usd": 1}})),
        )
        .await;
    assert_eq!(s, 201);
    let caller = format!("key:{}", control_plane::model::hash_secret(key["secret"].as_str().unwrap()));
    wait_for_snapshot(t).await;
    let (grpc, base, stop) = start(t).await;

    let now = control_plane::store::now_unix();
    let (today, month) = (utc_day(now), utc_month(now));
    let batch = UsageBatch {
        batch_id: "envoy-a/123/1".into(),
        rows: vec![row(&caller, "gpt-4o-mini", &today, 3, 1234, 567), row("jwt:svc", "gpt-4o-mini", &today, 1, 10, 1)],
        spend_for: vec!["jwt:budgeted".into()],
    };
    let cost = 1234 * 150_000 + 567 * 600_000;
    let body = serde_json::to_vec(&batch).unwrap();

    // Authentication first, then validation.
    for bad in [None, Some("wrong"), Some(READ_ONLY)] {
        let e = report(grpc, bad, body.clone()).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{bad:?}");
    }
    let e = report(grpc, Some(WATCH_TOKEN), b"{not json".to_vec()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let mut bad_day = batch.clone();
    bad_day.rows[0].day = "27/11/2026".into();
    let e = report(grpc, Some(WATCH_TOKEN), serde_json::to_vec(&bad_day).unwrap()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("day"), "{}", e.message());

    let ack = report(grpc, Some(WATCH_TOKEN), body.clone()).await.unwrap();
    assert_eq!(ack.batch_id, "envoy-a/123/1");
    assert!(!ack.duplicate);
    let mine = ack.spend.iter().find(|s| s.caller == caller).unwrap();
    assert_eq!(
        (mine.day.as_str(), mine.day_cost_pusd, mine.month.as_str(), mine.month_cost_pusd),
        (today.as_str(), cost, month.as_str(), cost)
    );
    assert_eq!(ack.spend.iter().find(|s| s.caller == "jwt:budgeted").map(|s| s.month_cost_pusd), Some(0));
    // The filter resends the same batch after a lost answer: counted once.
    let again = report(grpc, Some(WATCH_TOKEN), body).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.spend, ack.spend);

    // REST, over HTTP, with the read-only token; by key name and by caller.
    let ro = Client::new(&base, Some(READ_ONLY.to_string()));
    let v =
        ro.send("GET", &format!("/v1/usage?key=team-a&period=day&from={today}&to={today}"), None, &[]).await.unwrap();
    assert_eq!(
        v["data"],
        json!([{"caller": caller, "key": "team-a", "provider": "openai", "model": "gpt-4o-mini", "period": today,
                "requests": 3, "input_tokens": 1234, "output_tokens": 567, "cache_read_tokens": 0, "cache_creation_tokens": 0,
                "reasoning_tokens": 0, "cost_pusd": cost, "cost_usd": "0.0005253"}])
    );
    let v =
        ro.send("GET", &format!("/v1/usage?caller={}&period=month", Client::escape(&caller)), None, &[]).await.unwrap();
    assert_eq!(v["data"][0]["period"], json!(month));
    assert_eq!(v["data"][0]["key"], "team-a");
    assert_eq!(v["data"][0]["cost_usd"], "0.0005253");
    // Every caller; the model filter; a JWT caller has no key name.
    let v = ro.send("GET", "/v1/usage?period=month", None, &[]).await.unwrap();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let jwt = data.iter().find(|r| r["caller"] == "jwt:svc").unwrap();
    assert_eq!((jwt["key"].clone(), jwt["requests"].as_u64()), (Value::Null, Some(1)));
    let v = ro.send("GET", "/v1/usage?period=month&model=other", None, &[]).await.unwrap();
    assert_eq!(v["data"], json!([]));

    // Bad queries name the parameter.
    let admin = Client::new(&base, Some(ADMIN.to_string()));
    for (q, param) in [
        ("period=week", "period"),
        ("from=2026-13", "from"),
        ("from=2026-11-27&to=2026-11-01", "to"),
        ("key=nobody", "key"),
        ("key=team-a&caller=jwt:svc", "caller"),
        ("caller=", "caller"),
    ] {
        let e = admin.send("GET", &format!("/v1/usage?{q}"), None, &[]).await.unwrap_err();
        assert!(e.contains(param) && (e.contains("400") || e.contains("404")), "{q}: {e}");
    }
    // The CLI prints the same, and creates budgeted keys.
    let cli = |args: Vec<String>| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_control-plane"))
                .args(&args)
                .env("CP_URL", &base)
                .env("CP_TOKEN", ADMIN)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        })
    };
    let printed = cli(vec![
        "usage".into(),
        "--key".into(),
        "team-a".into(),
        "--from".into(),
        today.clone(),
        "--to".into(),
        today.clone(),
    ])
    .await
    .unwrap();
    let rest = ro.send("GET", &format!("/v1/usage?key=team-a&from={today}&to={today}"), None, &[]).await.unwrap();
    assert_eq!(printed, rest);
    let created = cli([
        "keys",
        "create",
        "--name",
        "cli-capped",
        "--models",
        "*",
        "--budget-usd",
        "0.5",
        "--budget-period",
        "day",
    ]
    .map(String::from)
    .to_vec())
    .await
    .unwrap();
    assert_eq!(created["budget"], json!({"limit_usd": 0.5, "period": "day"}));
    let unauth = Client::new(&base, None);
    assert!(unauth.send("GET", "/v1/usage", None, &[]).await.unwrap_err().contains("401"));

    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(10)).await;
}
