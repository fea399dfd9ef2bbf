//! A fast mock provider for benchmarks, on 127.0.0.1, one thread: OpenAI Chat Completions and
//! Anthropic Messages answers taken from the recorded fixtures.
//!
//! `POST .../chat/completions` → the recorded OpenAI JSON. `POST .../messages` → the recorded
//! Anthropic JSON, or, when the body asks for `"stream":true`, an SSE stream of `--chunks` chunks
//! sent `--chunk-interval-us` apart. `POST /model/{id}/invoke` → the recorded Bedrock InvokeModel
//! answer (an Anthropic message); `POST /model/{id}/converse` → the recorded Converse answer; the
//! SigV4 signature is not checked. `--latency-ms` delays every response's headers.
//! `GET /__bench/last` → the last POST's body, its path in `x-bench-path`: the benchmark's sanity
//! check reads it to see that a scenario reached the upstream it is meant to measure.
//! Prints `listening on 127.0.0.1:PORT` once ready (`--port 0` picks a free port).

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bench::Responses;
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Sleep;

struct Options {
    port: u16,
    fixtures: PathBuf,
    latency: Duration,
    chunks: usize,
    interval: Duration,
}

const USAGE: &str =
    "usage: mock-upstream [--port N] [--fixtures DIR] [--latency-ms N] [--chunks N] [--chunk-interval-us N]";

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        port: 0,
        fixtures: bench::default_fixtures_dir(),
        latency: Duration::ZERO,
        chunks: 100,
        interval: Duration::ZERO,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--port" => o.port = u16::try_from(num(&value)?).map_err(|_| "--port out of range".to_owned())?,
            "--fixtures" => o.fixtures = PathBuf::from(value),
            "--latency-ms" => o.latency = Duration::from_millis(num(&value)?),
            "--chunks" => o.chunks = usize::try_from(num(&value)?).map_err(|_| "--chunks out of range".to_owned())?,
            "--chunk-interval-us" => o.interval = Duration::from_micros(num(&value)?),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// The streamed body: one frame per prepared chunk, `interval` apart.
struct ChunkedBody {
    chunks: Arc<[Bytes]>,
    next: usize,
    interval: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let Some(chunk) = this.chunks.get(this.next).cloned() else {
            return Poll::Ready(None);
        };
        if this.next > 0 && !this.interval.is_zero() {
            let interval = this.interval;
            let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = tokio::time::Instant::now() + interval;
            timer.as_mut().reset(deadline);
        }
        this.next += 1;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.chunks.len()
    }
}

type MockBody = Either<Full<Bytes>, ChunkedBody>;

struct State {
    responses: Responses,
    sse: Arc<[Bytes]>,
    latency: Duration,
    interval: Duration,
    /// The last POST's path and body (a cheap `Bytes` clone), for the sanity check.
    last: Mutex<Option<(String, Bytes)>>,
}

const LAST_PATH: &str = "/__bench/last";

fn wants_stream(body: &[u8]) -> bool {
    // A SIMD byte search, not a JSON parse: the mock must stay cheap next to the systems under
    // test, also on the 64-80 KB bodies of (d) and (f).
    let has = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
    has(b"\"stream\":true") || has(b"\"stream\": true")
}

fn json(body: Bytes) -> Response<MockBody> {
    let mut r = Response::new(Either::Left(Full::new(body)));
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    r
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<MockBody>, Infallible> {
    let path = req.uri().path().to_owned();
    if req.method() == hyper::Method::GET && path == LAST_PATH {
        return Ok(last_request(&state));
    }
    // Read the whole request, as a provider would, before answering.
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if let Ok(mut last) = state.last.lock() {
        *last = Some((path.clone(), body.clone()));
    }
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let response = if path.ends_with("/chat/completions") {
        json(state.responses.openai_json.clone())
    } else if path.ends_with("/messages") {
        if wants_stream(&body) {
            let mut r = Response::new(Either::Right(ChunkedBody {
                chunks: Arc::clone(&state.sse),
                next: 0,
                interval: state.interval,
                timer: None,
            }));
            let h = r.headers_mut();
            h.insert("content-type", hyper::header::HeaderValue::from_static("text/event-stream; charset=utf-8"));
            h.insert("cache-control", hyper::header::HeaderValue::from_static("no-cache"));
            r
        } else {
            json(state.responses.anthropic_json.clone())
        }
    } else if path.starts_with("/model/") && path.ends_with("/invoke") {
        json(state.responses.bedrock_invoke_json.clone())
    } else if path.starts_with("/model/") && path.ends_with("/converse") {
        json(state.responses.bedrock_converse_json.clone())
    } else {
        let mut r = json(Bytes::from_static(
            br#"{"error":{"message":"mock-upstream: unknown path","type":"invalid_request_error","param":null,"code":null}}"#,
        ));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    Ok(response)
}

fn last_request(state: &State) -> Response<MockBody> {
    let last = state.last.lock().ok().and_then(|l| l.clone());
    let Some((path, body)) = last else {
        let mut r = json(Bytes::from_static(br#"{"error":"no request yet"}"#));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let mut r = Response::new(Either::Left(Full::new(body)));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&path) {
        r.headers_mut().insert("x-bench-path", v);
    }
    r
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let responses = match Responses::load(&opts.fixtures, opts.chunks) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mock-upstream: cannot load recordings from {}: {e}", opts.fixtures.display());
            std::process::exit(2);
        }
    };
    let state = Arc::new(State {
        sse: responses.anthropic_sse.clone().into(),
        responses,
        latency: opts.latency,
        interval: opts.interval,
        last: Mutex::new(None),
    });
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mock-upstream: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result: std::io::Result<()> = runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", opts.port)).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    if let Err(e) = result {
        eprintln!("mock-upstream: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::wants_stream;

    #[test]
    fn stream_flag_is_found_with_or_without_a_space_and_not_when_false() {
        assert!(wants_stream(br#"{"model":"m","stream":true}"#));
        assert!(wants_stream(br#"{"stream": true,"model":"m"}"#));
        assert!(!wants_stream(br#"{"model":"m","stream":false}"#));
        assert!(!wants_stream(br#"{"model":"m","text":"stream"}"#));
    }
}
