// Planted examples for rust-panics.yml: `semgrep --test .semgrep` checks each `ruleid:` line is
// flagged and each `ok:` line is not.

fn data_plane(body: &[u8], s: &str, n: usize) -> Result<u8, GatewayError> {
    // ruleid: no-unwrap-in-data-plane
    let v: Value = serde_json::from_slice(body).unwrap();
    // ruleid: no-unwrap-in-data-plane
    let model = v.get("model").expect("model");
    // ok: no-unwrap-in-data-plane
    let first = body.first().copied().unwrap_or(0);
    // ok: no-unwrap-in-data-plane
    let parsed = s.parse::<u32>().unwrap_or_default();
    if n > 3 {
        // ruleid: no-panic-in-data-plane
        panic!("too many");
    }
    // ruleid: no-panic-in-data-plane
    assert!(n < 10);
    // ok: no-panic-in-data-plane
    debug_assert!(n < 10);
    match n {
        0 => {}
        // ruleid: no-panic-in-data-plane
        _ => unreachable!(),
    }
    // ruleid: no-range-index-in-data-plane
    let head = &body[..n];
    // ruleid: no-range-index-in-data-plane
    let tail = &s[n..];
    // ruleid: no-range-index-in-data-plane
    let mid = &body[1..n];
    // ok: no-range-index-in-data-plane
    let safe = body.get(..n).unwrap_or_default();
    // ok: no-range-index-in-data-plane
    let whole = &body[..];
    Ok(first)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tests_may_panic() {
        // ok: no-unwrap-in-data-plane
        let v: u8 = "1".parse().unwrap();
        // ok: no-panic-in-data-plane
        assert_eq!(v, 1);
        // ok: no-range-index-in-data-plane
        let s = &"abc"[1..];
    }
}
