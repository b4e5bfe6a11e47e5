//! `$connect`: lets a backend authenticate an upgrade that carries no token,
//! from the request's headers and cookies (a PHP session cookie is enough).
//!
//! The edge asks the routers; a router with no `$connect` route, or no router
//! at all, leaves the edge's own rule in force (anonymous when allowed,
//! otherwise 401).

use std::collections::BTreeMap;

use herald_proto::client::action;
use herald_proto::conn_id::ConnId;
use herald_proto::handler::HandlerRequest;
use herald_proto::status::{self, Failure};
use http::{HeaderMap, StatusCode};
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::auth::{Identity, Verifier};
use crate::routers::Routers;

/// Why an upgrade is refused: the status and a message for the client.
pub(crate) type Refusal = (StatusCode, String);

/// The identity of a connection without a token: the `$connect` route's
/// handler decides from `headers` (and the cookies in them); without a
/// route or a router, `verifier`'s own rule does.
pub(crate) async fn authenticate(
    routers: &Routers,
    verifier: &Verifier,
    conn: &ConnId,
    headers: &HeaderMap,
) -> Result<Identity, Refusal> {
    let own_rule = || verifier.connect(None).map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()));
    if !routers.reachable() {
        return own_rule();
    }
    let request = HandlerRequest {
        action: action::CONNECT.to_owned(),
        details: RawValue::from_string("null".to_owned()).expect("null is JSON"),
        id: None,
        conn: conn.to_string(),
        user: None,
        groups: Vec::new(),
        claims: Default::default(),
        headers: Some(header_map(headers)),
        cookies: Some(cookies(headers)),
        timeout_ms: None,
    };
    let span = tracing::info_span!(target: herald_bus::trace::TARGET, "herald.edge.connect", conn = %conn);
    let (answer, message) = match routers.ask(request).instrument(span).await {
        Ok(response) => match response.error {
            None => return Ok(Identity::from_connect(response)),
            Some(error) => (Ok(error.code), error.message),
        },
        Err(failure) => (Err(failure), failure_message(failure).to_owned()),
    };
    match status::upgrade_refusal(answer) {
        None => own_rule(),
        Some(code) => Err((StatusCode::from_u16(code).expect("refusals are HTTP statuses"), message)),
    }
}

/// What a client refused because `$connect` got no answer is told.
fn failure_message(failure: Failure) -> &'static str {
    match failure {
        Failure::TimedOut => "authentication timed out",
        Failure::Malformed => "authentication failed",
        Failure::NoResponders | Failure::Unreachable => "authentication is unavailable",
    }
}

/// Request headers by lower-case name; repeated headers joined with ", ".
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    map
}

/// The cookies of the `Cookie` headers.
fn cookies(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().trim_matches('"').to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::{ACCEPT, COOKIE};

    #[test]
    fn reads_cookies_and_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("PHPSESSID=abc123; theme=\"dark\""));
        headers.append(COOKIE, HeaderValue::from_static("lang=en"));
        headers.append(ACCEPT, HeaderValue::from_static("a"));
        headers.append(ACCEPT, HeaderValue::from_static("b"));
        let cookies = cookies(&headers);
        assert_eq!(cookies["PHPSESSID"], "abc123");
        assert_eq!(cookies["theme"], "dark");
        assert_eq!(cookies["lang"], "en");
        assert_eq!(header_map(&headers)["accept"], "a, b");
    }
}
