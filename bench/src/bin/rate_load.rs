//! Constant-rate HTTP/1.1 load (wrk2-style), one thread: request `i` is due at `start + i/rate`,
//! spread over `--connections` keep-alive connections, and its latency is measured from when it
//! was due, not from when it was sent, so a stalled server cannot hide its queueing delay
//! (coordinated omission). Prints one JSON line with the achieved rate and the percentiles.
//!
//! rate-load --url http://127.0.0.1:PORT/path --body-file F --rate R --duration S
//!           [--connections C] [--header 'name: value']...

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Options {
    host: String,
    port: u16,
    path: String,
    body: Bytes,
    headers: Vec<(String, String)>,
    rate: f64,
    duration: Duration,
    connections: usize,
}

const USAGE: &str = "usage: rate-load --url http://127.0.0.1:PORT/path --body-file F --rate R --duration S [--connections C] [--header 'k: v']...";

fn parse_args() -> Result<Options, String> {
    let mut url = None;
    let mut body = None;
    let mut rate = None;
    let mut duration = None;
    let mut connections = 16usize;
    let mut headers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--url" => url = Some(value),
            "--body-file" => body = Some(std::fs::read(&value).map_err(|e| format!("{value}: {e}"))?),
            "--rate" => rate = Some(value.parse::<f64>().map_err(|_| format!("--rate: {value}"))?),
            "--duration" => duration = Some(value.parse::<f64>().map_err(|_| format!("--duration: {value}"))?),
            "--connections" => connections = value.parse().map_err(|_| format!("--connections: {value}"))?,
            "--header" => {
                let (k, v) =
                    value.split_once(':').ok_or_else(|| format!("--header expects 'name: value', got {value}"))?;
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let url = url.ok_or(USAGE)?;
    let rest = url.strip_prefix("http://").ok_or("--url must start with http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority.rsplit_once(':').ok_or("--url needs host:port")?;
    let rate = rate.filter(|r| *r > 0.0).ok_or("--rate must be > 0")?;
    let duration = duration.filter(|d| *d > 0.0).ok_or("--duration must be > 0")?;
    Ok(Options {
        host: host.to_owned(),
        port: port.parse().map_err(|_| "bad port")?,
        path: if path.is_empty() { "/".to_owned() } else { path.to_owned() },
        body: Bytes::from(body.ok_or(USAGE)?),
        headers,
        rate,
        duration: Duration::from_secs_f64(duration),
        connections: connections.max(1),
    })
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    non_2xx: u64,
}

/// Connection `k` of `n` sends requests k, k+n, k+2n, ... each when it is due.
async fn worker(o: std::rc::Rc<Options>, k: usize, n: usize, start: Instant, total: u64) -> Tally {
    let mut tally = Tally::default();
    let mut sender = None;
    let mut i = k as u64;
    while i < total {
        let due = start + Duration::from_secs_f64(i as f64 / o.rate);
        tokio::time::sleep_until(due.into()).await;
        if sender.is_none() {
            match TcpStream::connect((o.host.as_str(), o.port)).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(s)).await {
                        Ok((tx, conn)) => {
                            tokio::task::spawn_local(conn);
                            sender = Some(tx);
                        }
                        Err(_) => tally.errors += 1,
                    }
                }
                Err(_) => tally.errors += 1,
            }
        }
        if let Some(tx) = sender.as_mut() {
            let mut req = Request::post(o.path.as_str())
                .header("host", format!("{}:{}", o.host, o.port))
                .header("content-type", "application/json");
            for (k, v) in &o.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let ok = match req.body(Full::new(o.body.clone())) {
                Ok(req) => match tx.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.into_body().collect().await {
                            Ok(_) if status.is_success() => true,
                            Ok(_) => {
                                tally.non_2xx += 1;
                                true
                            }
                            Err(_) => false,
                        }
                    }
                    Err(_) => false,
                },
                Err(_) => false,
            };
            if ok {
                tally.latencies_us.push(due.elapsed().as_micros() as u64);
            } else {
                tally.errors += 1;
                sender = None;
            }
        }
        i += n as u64;
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted.get(idx.min(sorted.len() - 1)).copied().unwrap_or(0)
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => std::rc::Rc::new(o),
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rate-load: {e}");
            std::process::exit(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    let total = (opts.rate * opts.duration.as_secs_f64()).round() as u64;
    let (tally, elapsed) = local.block_on(&runtime, async {
        let start = Instant::now() + Duration::from_millis(20);
        let n = opts.connections;
        let handles: Vec<_> =
            (0..n).map(|k| tokio::task::spawn_local(worker(opts.clone(), k, n, start, total))).collect();
        let mut all = Tally::default();
        for h in handles {
            if let Ok(t) = h.await {
                all.latencies_us.extend(t.latencies_us);
                all.errors += t.errors;
                all.non_2xx += t.non_2xx;
            }
        }
        (all, start.elapsed())
    });
    let mut lat = tally.latencies_us;
    lat.sort_unstable();
    let done = lat.len() as f64;
    println!(
        "{{\"target_rate\":{},\"requests\":{},\"rate\":{:.1},\"errors\":{},\"non_2xx\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
        opts.rate,
        lat.len(),
        done / elapsed.as_secs_f64().max(1e-9),
        tally.errors,
        tally.non_2xx,
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&lat, 99.9),
        lat.last().copied().unwrap_or(0)
    );
}
