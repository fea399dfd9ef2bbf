//! The control plane binary: `serve`, `create-tables`, and admin CLI subcommands that talk to a
//! running control plane over its REST API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use control_plane::api::{self, AppState, AuthConfig};
use control_plane::client::Client;
use control_plane::credentials::{AwsSecretsManager, CredentialPolicy, Resolver, SecretFetcher};
use control_plane::model::generate_secret;
use control_plane::snapshot::{spawn, BuilderOptions};
use control_plane::store::dynamo::{DynamoSettings, DynamoStore};
use control_plane::store::embedded::EmbeddedStore;
use control_plane::store::Store;
use control_plane::watch;
use serde_json::{json, Value};
use tokio::sync::Notify;

#[derive(Parser)]
#[command(name = "control-plane", version, about = "AI gateway control plane")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the REST API and the snapshot builder.
    Serve(ServeArgs),
    /// Create the DynamoDB table with TTL on `expires_at` (usage markers, audit records with a
    /// retention) for DynamoDB Local; cloud tables come from terraform.
    CreateTables {
        #[arg(long, env = "CP_DYNAMODB_TABLE", default_value = "ai-gateway")]
        table: String,
        #[arg(long, env = "CP_DYNAMODB_ENDPOINT")]
        endpoint: Option<String>,
    },
    /// Make the store match a YAML/JSON document of providers and routes.
    Apply {
        #[arg(short = 'f', long)]
        file: PathBuf,
        /// Print the diff without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Also delete stored providers, routes (and prices, when the document lists prices) that
        /// the document does not list. Without it they are kept.
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print providers, routes, keys, prices (all pages, or one by name) or the snapshot status.
    Get {
        what: What,
        name: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print recorded usage and cost (GET /v1/usage): per caller, provider model and period.
    Usage {
        /// Virtual key name.
        #[arg(long, conflicts_with = "caller")]
        key: Option<String>,
        /// `key:<hash>`, `jwt:<client_id>` or `anonymous`.
        #[arg(long)]
        caller: Option<String>,
        #[arg(long, value_enum, default_value = "day")]
        period: BudgetPeriodArg,
        /// `YYYY-MM` or `YYYY-MM-DD`.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Provider model id.
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print the audit trail of configuration changes (GET /v1/audit), newest first.
    Audit {
        #[arg(long, value_enum)]
        kind: Option<AuditKindArg>,
        /// Object name (with --kind: that object's history).
        #[arg(long)]
        name: Option<String>,
        /// `admin:<8 hex>` (the first 8 hex digits of the token's SHA-256), `read-only:<8 hex>`.
        #[arg(long)]
        actor: Option<String>,
        /// RFC 3339 time (inclusive), e.g. 2026-12-01T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time (exclusive).
        #[arg(long)]
        until: Option<String>,
        /// Most records printed (following pages as needed).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print the records as a JSON array instead of one line each.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Create, rotate or revoke virtual keys.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// TESTS ONLY: writes a provider or route document straight into a stopped control plane's
    /// embedded store, bypassing every validation (how the e2e tests poison a store). Refuses to
    /// run unless CP_TEST_RAW_STORE_WRITES=1.
    #[command(hide = true)]
    TestRawStorePut {
        #[arg(long, env = "CP_DATA_DIR", default_value = ".run/control-plane")]
        data_dir: PathBuf,
        #[arg(long, value_enum)]
        kind: RawKind,
        #[arg(long)]
        name: String,
        /// The document, JSON.
        #[arg(long)]
        doc: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RawKind {
    Provider,
    Route,
}

#[derive(Clone, Copy, ValueEnum)]
enum BudgetPeriodArg {
    Day,
    Month,
}

impl BudgetPeriodArg {
    fn as_str(self) -> &'static str {
        match self {
            BudgetPeriodArg::Day => "day",
            BudgetPeriodArg::Month => "month",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum AuditKindArg {
    Provider,
    Route,
    Key,
    Price,
}

impl AuditKindArg {
    fn as_str(self) -> &'static str {
        match self {
            AuditKindArg::Provider => "provider",
            AuditKindArg::Route => "route",
            AuditKindArg::Key => "key",
            AuditKindArg::Price => "price",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum What {
    Providers,
    Routes,
    Keys,
    Prices,
    Snapshot,
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a key; its secret is printed once and never again.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated public model names, or `*`.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        #[arg(long, default_value = "unassigned")]
        owner: String,
        /// Unix seconds.
        #[arg(long)]
        expires_at: Option<u64>,
        /// Spending cap in USD per `--budget-period`.
        #[arg(long)]
        budget_usd: Option<f64>,
        #[arg(long, value_enum, default_value = "month")]
        budget_period: BudgetPeriodArg,
        #[command(flatten)]
        conn: Conn,
    },
    /// Issue a new secret (printed once); the old one keeps working for the grace period.
    Rotate {
        name: String,
        /// Seconds the old secret keeps working (0: refuse it at once). Default: one hour.
        #[arg(long)]
        grace_seconds: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke a key; filters refuse it as soon as they receive the next snapshot.
    Revoke {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Args)]
struct Conn {
    /// Base URL of the control plane.
    #[arg(long, env = "CP_URL", default_value = "http://127.0.0.1:8090")]
    url: String,
    /// Admin (or read-only) token.
    #[arg(long, env = "CP_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreKind {
    Embedded,
    Dynamodb,
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, env = "CP_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    #[arg(long, env = "CP_STORE", value_enum, default_value = "embedded")]
    store: StoreKind,
    /// Directory of the embedded store (and of the generated admin token file).
    #[arg(long, env = "CP_DATA_DIR", default_value = ".run/control-plane")]
    data_dir: PathBuf,
    /// How often to check the store for writes made by other replicas.
    #[arg(long, env = "CP_POLL_MS", default_value_t = 1000)]
    poll_ms: u64,
    /// Writes within this many milliseconds of the last published snapshot go out together in
    /// the next one (the first write after a quiet period goes out at once).
    #[arg(long, env = "CP_COALESCE_MS", default_value_t = 50)]
    coalesce_ms: u64,
    /// gRPC Watch listen address (snapshots to the filters).
    #[arg(long, env = "CP_GRPC_LISTEN", default_value = "127.0.0.1:8091")]
    grpc_listen: SocketAddr,
    /// `env:NAME` provider credentials may only name variables starting with this prefix (never
    /// the control plane's own CP_* or AWS_* variables, whatever the prefix).
    #[arg(long, env = "CP_CREDENTIAL_ENV_PREFIX", default_value = control_plane::credentials::DEFAULT_ENV_PREFIX)]
    credential_env_prefix: String,
    /// Secrets Manager endpoint (a local emulator); default: the ARN's regional endpoint.
    #[arg(long, env = "CP_SECRETSMANAGER_ENDPOINT")]
    secretsmanager_endpoint: Option<String>,
    /// Seconds a secret read from Secrets Manager is reused before it is read again.
    #[arg(long, env = "CP_SECRETS_TTL_SECS", default_value_t = 300)]
    secrets_ttl_secs: u64,
    /// Seconds between two reads of every referenced secret; a changed value is published under a
    /// new snapshot version without a configuration write. Default: `CP_SECRETS_TTL_SECS`; 0: off.
    #[arg(long, env = "CP_SECRETS_REFRESH_SECS")]
    secrets_refresh_secs: Option<u64>,
    /// Days an audit record is kept (DynamoDB: TTL on `expires_at`; embedded: pruned as records
    /// are written). Default, or 0: forever.
    #[arg(long, env = "CP_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u64>,
}

fn init_logging() {
    let level = match std::env::var("CP_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

fn tokens(var: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let store: Arc<dyn Store> = match args.store {
        StoreKind::Embedded => Arc::new(
            EmbeddedStore::open(&args.data_dir.join("store.redb"))
                .map_err(|e| e.to_string())?
                .with_audit_retention(args.audit_retention_days),
        ),
        StoreKind::Dynamodb => Arc::new(
            DynamoStore::connect(&DynamoSettings::from_env()).await.with_audit_retention(args.audit_retention_days),
        ),
    };
    let mut admin = tokens("CP_ADMIN_TOKEN");
    if admin.is_empty() {
        // Local mode: a fresh token per start, written (0600) where ./dev can read it; never
        // printed, since stdout usually ends up in a log file.
        let t = generate_secret("cp-admin-").map_err(|e| e.to_string())?;
        let path = args.data_dir.join("admin-token");
        std::fs::create_dir_all(&args.data_dir).map_err(|e| e.to_string())?;
        write_private(&path, &t).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("admin token written to {} (mode 0600)", path.display());
        admin.push(t);
    }
    let auth = AuthConfig::new(&admin, &tokens("CP_READONLY_TOKEN"));
    // Filters authenticate with a watch token; admin tokens work too, for local runs.
    let mut watch_tokens = tokens("CP_WATCH_TOKEN");
    watch_tokens.extend(admin.iter().cloned());
    let changed = Arc::new(Notify::new());
    let options = BuilderOptions {
        poll: Duration::from_millis(args.poll_ms),
        min_interval: Duration::from_millis(args.coalesce_ms),
        secrets_refresh: Some(Duration::from_secs(args.secrets_refresh_secs.unwrap_or(args.secrets_ttl_secs)))
            .filter(|d| !d.is_zero()),
    };
    // From here on every write goes through the builder's journaled store, so a change costs
    // the changed object, not a listing of the whole store.
    let policy = CredentialPolicy::new(&args.credential_env_prefix)?;
    let endpoint = args.secretsmanager_endpoint.filter(|e| !e.is_empty());
    let secrets: Arc<dyn SecretFetcher> = Arc::new(AwsSecretsManager::connect(endpoint).await);
    let resolver = Resolver::new(policy.clone(), Some(secrets), Duration::from_secs(args.secrets_ttl_secs));
    let service = spawn(store, Arc::new(resolver), changed.clone(), options);
    let (store, snapshots) = (service.store, service.snapshots);
    let nodes = Arc::new(watch::NodeBoard::default());
    let grpc_listener =
        tokio::net::TcpListener::bind(args.grpc_listen).await.map_err(|e| format!("bind {}: {e}", args.grpc_listen))?;
    let grpc = watch::serve(
        grpc_listener,
        watch::ConfigService::new(snapshots.clone(), &watch_tokens)
            .with_usage_store(store.clone())
            .with_node_board(nodes.clone()),
        shutdown_signal(),
    );
    let state = AppState { store, auth: Arc::new(auth), changed, snapshots, credentials: Arc::new(policy), nodes };
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("bind {}: {e}", args.listen))?;
    tracing::info!(listen = %args.listen, "control plane REST API listening");
    let rest = async {
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    };
    let (r, g) = tokio::join!(rest, grpc);
    r.and(g)
}

/// Resolves on Ctrl-C or SIGTERM (how test harnesses and ECS stop a task).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

/// One audit record on one line: time, actor, action (and via apply), object, versions, diff.
fn audit_line(r: &Value) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    let v = |k: &str| r.get(k).and_then(Value::as_u64).map_or("-".to_string(), |n| n.to_string());
    let via = if s("via") == "apply" { " (apply)" } else { "" };
    let diff = r.get("diff").map(Value::to_string).unwrap_or_default();
    format!(
        "{} {} {}{via} {} {} v{}->v{} {diff}",
        s("time"),
        s("actor"),
        s("action"),
        s("kind"),
        s("name"),
        v("version_before"),
        v("version_after")
    )
}

fn client(conn: &Conn) -> Client {
    Client::new(&conn.url, conn.token.clone())
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Serve(args) => serve(args).await,
        Cmd::CreateTables { table, endpoint } => {
            let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
            let store = DynamoStore::connect(&DynamoSettings { table: table.clone(), endpoint, region }).await;
            let created = store.create_table().await.map_err(|e| e.to_string())?;
            store.enable_marker_ttl().await.map_err(|e| format!("enabling TTL on expires_at: {e}"))?;
            println!("table {table}: {}", if created { "created" } else { "already exists" });
            Ok(())
        }
        Cmd::Apply { file, dry_run, prune, conn } => {
            let body = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let json_file = file.extension().is_some_and(|e| e == "json");
            let ctype = if json_file { "application/json" } else { "application/yaml" };
            let path = format!("/v1/apply?dry_run={dry_run}&prune={prune}");
            let out = client(&conn).send("POST", &path, Some((ctype, body)), &[]).await?;
            print!("{}", out.get("diff").and_then(Value::as_str).unwrap_or(""));
            let n = out.get("changes").and_then(Value::as_array).map_or(0, Vec::len);
            let kept = out.get("kept").and_then(Value::as_array).map_or(0, Vec::len);
            if dry_run {
                println!("dry run: {n} change(s) not applied");
            } else {
                println!("applied {n} change(s)");
            }
            if kept > 0 {
                println!("{kept} object(s) not in the document kept (--prune deletes them)");
            }
            Ok(())
        }
        Cmd::Get { what, name, conn } => {
            let c = client(&conn);
            let base = match what {
                What::Providers => "/v1/providers",
                What::Routes => "/v1/routes",
                What::Keys => "/v1/keys",
                What::Prices => "/v1/prices",
                What::Snapshot => return c.send("GET", "/v1/snapshot", None, &[]).await.map(|v| print_json(&v)),
            };
            if let Some(n) = name {
                let v = c.send("GET", &format!("{base}/{}", Client::escape(&n)), None, &[]).await?;
                print_json(&v);
                return Ok(());
            }
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(cur) => format!("{base}?limit=1000&cursor={cur}"),
                    None => format!("{base}?limit=1000"),
                };
                let page = c.send("GET", &path, None, &[]).await?;
                all.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
                match page.get("next_cursor").and_then(Value::as_str) {
                    Some(n) => cursor = Some(n.to_string()),
                    None => break,
                }
            }
            print_json(&Value::Array(all));
            Ok(())
        }
        Cmd::Usage { key, caller, period, from, to, model, conn } => {
            let mut q = vec![format!("period={}", period.as_str())];
            for (k, v) in [("key", key), ("caller", caller), ("from", from), ("to", to), ("model", model)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", Client::escape(&v)));
                }
            }
            let v = client(&conn).send("GET", &format!("/v1/usage?{}", q.join("&")), None, &[]).await?;
            print_json(&v);
            Ok(())
        }
        Cmd::Audit { kind, name, actor, since, until, limit, json, conn } => {
            let c = client(&conn);
            let mut q = Vec::new();
            let kind = kind.map(|k| k.as_str().to_string());
            for (k, v) in [("kind", kind), ("name", name), ("actor", actor), ("since", since), ("until", until)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", Client::escape(&v)));
                }
            }
            let mut records = Vec::new();
            let mut cursor: Option<String> = None;
            while records.len() < limit {
                let mut page_q = q.clone();
                page_q.push(format!("limit={}", (limit - records.len()).min(500)));
                if let Some(cur) = &cursor {
                    page_q.push(format!("cursor={cur}"));
                }
                let page = c.send("GET", &format!("/v1/audit?{}", page_q.join("&")), None, &[]).await?;
                records.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
                match page.get("next_cursor").and_then(Value::as_str) {
                    Some(n) => cursor = Some(n.to_string()),
                    None => break,
                }
            }
            if json {
                print_json(&Value::Array(records));
            } else {
                for r in &records {
                    println!("{}", audit_line(r));
                }
            }
            Ok(())
        }
        Cmd::Keys { cmd: KeysCmd::Create { name, models, owner, expires_at, budget_usd, budget_period, conn } } => {
            let mut body = json!({"name": name, "owner": owner, "allowed_models": models});
            if let Some(t) = expires_at {
                body["expires_at"] = json!(t);
            }
            if let Some(limit) = budget_usd {
                body["budget"] = json!({"limit_usd": limit, "period": budget_period.as_str()});
            }
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            let v = client(&conn).send("POST", "/v1/keys", Some(("application/json", bytes)), &[]).await?;
            print_json(&v);
            eprintln!("store the secret now: it is not shown again");
            Ok(())
        }
        Cmd::Keys { cmd: KeysCmd::Rotate { name, grace_seconds, conn } } => {
            let body = match grace_seconds {
                Some(g) => json!({"grace_seconds": g}),
                None => json!({}),
            };
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            let path = format!("/v1/keys/{}/rotate", Client::escape(&name));
            let v = client(&conn).send("POST", &path, Some(("application/json", bytes)), &[]).await?;
            print_json(&v);
            eprintln!("store the new secret now: it is not shown again");
            Ok(())
        }
        Cmd::TestRawStorePut { data_dir, kind, name, doc } => {
            if std::env::var("CP_TEST_RAW_STORE_WRITES").as_deref() != Ok("1") {
                return Err(
                    "test-raw-store-put bypasses validation and exists for tests only: set CP_TEST_RAW_STORE_WRITES=1"
                        .into(),
                );
            }
            let doc: Value = serde_json::from_str(&doc).map_err(|e| format!("--doc: {e}"))?;
            let kind = match kind {
                RawKind::Provider => control_plane::store::Kind::Provider,
                RawKind::Route => control_plane::store::Kind::Route,
            };
            let store = EmbeddedStore::open(&data_dir.join("store.redb")).map_err(|e| e.to_string())?;
            let audit = control_plane::audit::AuditContext::tool("test-raw-store-put");
            let rec = match store.get(kind, &name).await.map_err(|e| e.to_string())? {
                Some(_) => store.update(kind, &name, None, &doc, &audit).await,
                None => store.create(kind, &name, &doc, None, &audit).await,
            }
            .map_err(|e| e.to_string())?;
            println!("wrote {} '{}' version {} without validation", kind.as_str(), rec.name, rec.version);
            Ok(())
        }
        Cmd::Keys { cmd: KeysCmd::Revoke { name, conn } } => {
            let v =
                client(&conn).send("POST", &format!("/v1/keys/{}/revoke", Client::escape(&name)), None, &[]).await?;
            print_json(&v);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
