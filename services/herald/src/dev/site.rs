//! Everything `herald dev` serves on the edge's port besides the edge's own
//! paths (`/ws`, `/healthz`, `/readyz`, `/metrics`): the demo page, the
//! JavaScript SDK, dev tokens, and the router's backend API.
//!
//! The files are built into the binary, so `herald dev` runs from anywhere
//! with nothing next to it. They are served with `Cache-Control: no-cache`:
//! a rebuilt binary may carry new ones, and a browser must not keep old
//! ones.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::FutureExt;
use herald_edge::{Fallback, full};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::token::{self, Tokens};

/// A file built into the binary, and where it is served.
struct Asset {
    /// The URL path.
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
/// TypeScript has no registered media type; as plain text, a browser shows
/// the declarations instead of downloading them.
const TYPESCRIPT: &str = "text/plain; charset=utf-8";

/// The demo page and the SDK it (and any page of the developer's) loads.
static ASSETS: [Asset; 5] = [
    Asset { path: "/", content_type: HTML, body: include_str!("../../../../demo/index.html") },
    Asset { path: "/demo/app.js", content_type: JAVASCRIPT, body: include_str!("../../../../demo/app.js") },
    Asset { path: "/demo/style.css", content_type: CSS, body: include_str!("../../../../demo/style.css") },
    Asset { path: "/sdk/herald.js", content_type: JAVASCRIPT, body: include_str!("../../../../clients/js/herald.js") },
    Asset {
        path: "/sdk/herald.d.ts",
        content_type: TYPESCRIPT,
        body: include_str!("../../../../clients/js/herald.d.ts"),
    },
];

impl Asset {
    fn response(&self) -> axum::response::Response {
        ([(CONTENT_TYPE, self.content_type), (CACHE_CONTROL, "no-cache")], self.body).into_response()
    }
}

/// The demo page, the SDK and `/dev/token`, whose tokens `tokens` signs.
pub fn app(tokens: Tokens) -> Router {
    ASSETS.iter().fold(token::routes(tokens), |app, asset| app.route(asset.path, get(|| async { asset.response() })))
}

/// `app` as the edge's fallback, for every request the edge does not serve
/// itself.
///
/// The edge's bodies must be `Sync`, and axum's are not; as every answer
/// here is small and complete when made, each is gathered before it is
/// handed over.
pub fn fallback(app: Router) -> Fallback {
    Arc::new(move |request| {
        let app = app.clone();
        async move {
            let Ok(response) = app.oneshot(request).await;
            let (mut parts, body) = response.into_parts();
            let body = match body.collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a dev page's answer");
                    parts.status = StatusCode::INTERNAL_SERVER_ERROR;
                    Bytes::new()
                }
            };
            Response::from_parts(parts, full(body))
        }
        .boxed()
    })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use herald_edge::AuthConfig;
    use http::Request;

    use super::*;

    #[tokio::test]
    async fn serves_every_file_with_its_type_and_no_cache() {
        let auth = AuthConfig { key: None, allow_anonymous: true, audience: None, issuer: None };
        let app = app(Tokens::new("secret", &auth));
        for asset in &ASSETS {
            let request = Request::get(asset.path).body(Body::empty()).unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
            assert_eq!(response.headers()[CONTENT_TYPE], asset.content_type, "{}", asset.path);
            assert_eq!(response.headers()[CACHE_CONTROL], "no-cache", "{}", asset.path);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, asset.body.as_bytes(), "{}", asset.path);
        }
    }
}
