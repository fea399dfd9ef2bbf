// Planted examples for filter-logging.yml: `semgrep --test .semgrep` checks each `ruleid:` line is
// flagged and each `ok:` line is not.

fn on_headers(ctx: &Http, api_key: &str, model: &str) {
    // ruleid: no-print-in-data-plane
    println!("model {model}");
    // ruleid: no-print-in-data-plane
    eprintln!("oops");
    // ruleid: no-print-in-data-plane
    dbg!(model);
    // ok: no-print-in-data-plane
    log::info!("model {}", model);

    // ruleid: no-credential-header-in-logs
    log::debug!("authorization: {:?}", ctx.get_http_request_header("authorization"));
    // ruleid: no-credential-header-in-logs
    info!("key {:?}", ctx.get_http_request_header(AUTH_HEADER));
    // ruleid: no-credential-header-in-logs
    warn!("client sent {}", api_key);
    // ruleid: no-credential-header-in-logs
    log::error!("x-api-key was {}", model);
    // ok: no-credential-header-in-logs
    log::info!("routing {} to {}", model, "openai");
    // ok: no-credential-header-in-logs
    log::warn!("credential missing for provider {}", model);
}
