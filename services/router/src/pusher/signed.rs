//! Reading a signed call: which app it is for, its body, and that the app
//! signed it (`auth_key`, `auth_timestamp`, `auth_version`, `body_md5`,
//! `auth_signature`, checked by `herald_proto::pusher::sign::verify_rest`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::RequestPartsExt;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request};
use herald_proto::pusher::app::App;
use herald_proto::pusher::sign::{RestCall, verify_rest};
use http::StatusCode;

use super::PusherApi;
use super::error::PusherError;

/// A call the app it names has signed, with its body.
#[derive(Debug)]
pub(crate) struct Signed {
    pub app: Arc<App>,
    pub body: Bytes,
}

impl FromRequest<Arc<PusherApi>> for Signed {
    type Rejection = PusherError;

    async fn from_request(request: Request, api: &Arc<PusherApi>) -> Result<Signed, PusherError> {
        api.metrics.api_requests.inc();
        let signed = read(request, api).await;
        if signed.is_err() {
            api.metrics.api_refusals.inc();
        }
        signed
    }
}

async fn read(request: Request, api: &PusherApi) -> Result<Signed, PusherError> {
    let (mut parts, body) = request.into_parts();
    let params: Path<HashMap<String, String>> =
        parts.extract().await.map_err(|rejection: PathRejection| PusherError::bad_request(rejection.body_text()))?;
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let app = match params.get("app_id") {
        Some(id) => api.apps.by_id(id),
        // `/users/<id>/terminate_connections`, as the PyPI `pusher` 3.3
        // sends it (without `/apps/<id>`): the key names the app.
        None => auth_key(&query).and_then(|key| api.apps.by_key(&key)),
    };
    let app = app.ok_or_else(PusherError::unknown_app)?.clone();
    let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
    let body = Bytes::from_request(Request::from_parts(parts, body), &()).await.map_err(|rejection| match rejection
        .status()
    {
        StatusCode::PAYLOAD_TOO_LARGE => PusherError::too_large("Payload Too Large: the request body is too large"),
        _ => PusherError::bad_request(rejection.body_text()),
    })?;
    let call = RestCall { method: method.as_str(), path: &path, query: &query, body: &body };
    verify_rest(&app.key, &app.secret, &call, now_secs()).map_err(|e| PusherError::unauthorized(e.to_string()))?;
    Ok(Signed { app, body })
}

fn auth_key(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "auth_key").map(|(_, key)| key.into_owned())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}
