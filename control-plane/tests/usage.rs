//! `ReportUsage` over real gRPC (tonic client), then `GET /v1/usage` over HTTP (embedded store;
//! `store_dynamodb.rs` runs the same flow on DynamoDB Local).

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_usage_over_grpc_then_read_it_over_rest() {
    common::usage_flow::report_then_read(&common::server::TestApp::new()).await;
}
