//! `ReportUsage` over real gRPC (tonic client), then `GET /v1/usage` over HTTP (embedded store;
//! `store_dynamodb.rs` runs the same flow on DynamoDB Local).

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_usage_over_grpc_then_read_it_over_rest() {
    common::usage_flow::report_then_read(&common::server::TestApp::new()).await;
}

/// Kills the spawned control plane however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `control-plane serve` (the binary, embedded store) offers ReportUsage on its Watch port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_offers_report_usage_on_the_watch_port() {
    use control_plane::client::Client;
    use gateway_core::usage::{utc_day, UsageBatch, UsageRow};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let (rest, grpc) = (free_port(), free_port());
    let _child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_control-plane"))
            .arg("serve")
            .env("CP_LISTEN", format!("127.0.0.1:{rest}"))
            .env("CP_GRPC_LISTEN", format!("127.0.0.1:{grpc}"))
            .env("CP_DATA_DIR", dir.path())
            .env("CP_ADMIN_TOKEN", "admin-for-serve-test")
            .env("CP_WATCH_TOKEN", "watch-for-serve-test")
            .env("CP_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let admin = Client::new(&format!("http://127.0.0.1:{rest}"), Some("admin-for-serve-test".into()));
    let mut up = false;
    for _ in 0..100 {
        if admin.send("GET", "/v1/snapshot", None, &[]).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "control plane did not start");
    let price =
        json!({"provider": "openai", "model": "m", "input_per_mtok": 2, "output_per_mtok": 8}).to_string().into_bytes();
    admin.send("POST", "/v1/prices", Some(("application/json", price)), &[]).await.unwrap();
    // The price reaches the published snapshot, which prices the batch.
    for _ in 0..50 {
        if admin.send("GET", "/v1/snapshot", None, &[]).await.unwrap()["prices"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let day = utc_day(control_plane::store::now_unix());
    let row = UsageRow {
        caller: "jwt:svc".into(),
        provider: "openai".into(),
        model: "m".into(),
        day: day.clone(),
        requests: 1,
        input: 100,
        output: 10,
        cache_read: 0,
        cache_creation: 0,
        reasoning: 0,
    };
    let batch = UsageBatch { batch_id: "serve/1/1".into(), rows: vec![row], spend_for: vec![] };
    let addr = format!("127.0.0.1:{grpc}").parse().unwrap();
    let ack = common::usage_flow::report(addr, Some("watch-for-serve-test"), serde_json::to_vec(&batch).unwrap())
        .await
        .unwrap();
    assert_eq!(ack.spend[0].day_cost_pusd, 100 * 2_000_000 + 10 * 8_000_000);
    let v = admin.send("GET", "/v1/usage?caller=jwt:svc", None, &[]).await.unwrap();
    assert_eq!(v["data"][0]["cost_usd"], "0.00028");
}
