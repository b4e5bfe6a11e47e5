//! `$connect`: lets a backend authenticate an upgrade that carries no token,
//! from the request's headers and cookies (a PHP session cookie is enough).
//!
//! The edge asks the routers; a router with no `$connect` route, or no router
//! at all, leaves the edge's own rule in force (anonymous when allowed,
//! otherwise 401).

use std::collections::BTreeMap;

use bytes::Bytes;
use herald_bus::RequestError;
use herald_proto::client::action;
use herald_proto::conn_id::ConnId;
use herald_proto::handler::{HandlerRequest, HandlerResponse};
use http::{HeaderMap, StatusCode};
use serde_json::value::RawValue;

use crate::auth::Identity;
use crate::edge::EdgeShared;

/// Why an upgrade is refused: the status and a message for the client.
pub(crate) type Refusal = (StatusCode, String);

/// The identity of a connection without a token.
pub(crate) async fn authenticate(ctx: &EdgeShared, conn: &ConnId, headers: &HeaderMap) -> Result<Identity, Refusal> {
    let own_rule = || ctx.verifier.connect(None).map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()));
    if !ctx.bus.is_connected() {
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
    };
    let payload = Bytes::from(serde_json::to_vec(&request).expect("a handler request always serialises"));
    let subject = ctx.config.subjects.router_actions();
    let unavailable = |message: &str| Err((StatusCode::SERVICE_UNAVAILABLE, message.to_owned()));
    let answer = match ctx.bus.request(subject, payload, ctx.config.timing.action_timeout).await {
        Ok(answer) => answer,
        Err(RequestError::NoResponders(_)) => return own_rule(),
        Err(RequestError::TimedOut(_)) => return unavailable("authentication timed out"),
        Err(RequestError::Failed { .. }) => return unavailable("authentication is unavailable"),
    };
    let response: HandlerResponse = match herald_proto::json::from_object(&answer) {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %e, "malformed $connect answer");
            return Err((StatusCode::BAD_GATEWAY, "authentication failed".to_owned()));
        }
    };
    match response.error {
        // No `$connect` route.
        Some(error) if error.code == 404 => own_rule(),
        Some(error) if error.code == 403 => Err((StatusCode::FORBIDDEN, error.message)),
        Some(error) if error.code >= 500 => Err((StatusCode::SERVICE_UNAVAILABLE, error.message)),
        Some(error) => Err((StatusCode::UNAUTHORIZED, error.message)),
        None => Ok(Identity::from_connect(response)),
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
