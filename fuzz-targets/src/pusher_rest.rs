//! Pusher REST signatures and their query strings
//! (`herald_proto::pusher::sign::verify_rest`): what Pusher's server SDKs
//! send on every API call, and what anyone on the network can send instead.
//!
//! The input is `METHOD\nPATH\nQUERY\nBODY`.
//!
//! - Checking any call never panics; a refusal is an error value whose
//!   message says what to fix.
//! - A call signed as the SDKs sign it (`sign_rest`, with the input's
//!   method, path, parameters and body) is accepted, at any time within
//!   600 s of its timestamp and at none beyond.
//! - A signed call is refused once its method, path or body is changed, or
//!   when checked with another key or secret.

use herald_proto::pusher::sign::{REST_TIMESTAMP_TOLERANCE_SECS, RestAuthError, RestCall, sign_rest, verify_rest};

const KEY: &str = "278d425bdf160c739803";
const SECRET: &str = "7ad3773142a6692b25b8";
const NOW: u64 = 1_700_000_000;

pub fn run(data: &[u8]) {
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let (Some(method), Some(path), Some(query)) = (parts.next(), parts.next(), parts.next()) else { return };
    let body = parts.next().unwrap_or_default();
    // Method, path and query reach the check as text (hyper's and axum's).
    let (Ok(method), Ok(path), Ok(query)) =
        (std::str::from_utf8(method), std::str::from_utf8(path), std::str::from_utf8(query))
    else {
        return;
    };

    // As it came.
    if let Err(error) = verify_rest(KEY, SECRET, &RestCall { method, path, query, body }, NOW) {
        assert!(!error.to_string().is_empty());
    }

    // Signed as the SDKs sign it: the query's parameters but the ones the
    // signature adds, which an SDK does not take from its caller.
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| !key.to_ascii_lowercase().starts_with("auth_") && !key.eq_ignore_ascii_case("body_md5"))
        .collect();
    let signed = sign_rest(KEY, SECRET, method, path, &params, body, NOW);
    let call = RestCall { method, path, query: &signed, body };
    let tolerance = REST_TIMESTAMP_TOLERANCE_SECS;
    for now in [NOW, NOW - tolerance, NOW + tolerance] {
        assert_eq!(verify_rest(KEY, SECRET, &call, now), Ok(()), "{method:?} {path:?} {signed:?}");
    }
    for now in [NOW - tolerance - 1, NOW + tolerance + 1] {
        assert_eq!(verify_rest(KEY, SECRET, &call, now), Err(RestAuthError::Stale { given: NOW, now }));
    }
    assert_eq!(verify_rest("other-key", SECRET, &call, NOW), Err(RestAuthError::UnknownKey));
    assert!(matches!(verify_rest(KEY, "other-secret", &call, NOW), Err(RestAuthError::Signature { .. })));

    // Changed after signing.
    let other_path = format!("{path}/x");
    let changed = RestCall { path: &other_path, ..call };
    assert!(matches!(verify_rest(KEY, SECRET, &changed, NOW), Err(RestAuthError::Signature { .. })));
    let other_method = if method.eq_ignore_ascii_case("GET") { "POST" } else { "GET" };
    let changed = RestCall { method: other_method, ..call };
    assert!(matches!(verify_rest(KEY, SECRET, &changed, NOW), Err(RestAuthError::Signature { .. })));
    let other_body = [body, b"x"].concat();
    let changed = RestCall { body: &other_body, ..call };
    let expected = if body.is_empty() { RestAuthError::Missing("body_md5") } else { RestAuthError::BodyMd5 };
    assert_eq!(verify_rest(KEY, SECRET, &changed, NOW), Err(expected));
}
