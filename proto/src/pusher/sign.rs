//! Pusher's signatures, all HMAC-SHA256 with the app's secret:
//!
//! - channel authorisation (`auth` of `pusher:subscribe`) and user sign-in
//!   (`auth` of `pusher:signin`): `"<key>:" + hex(HMAC(secret, S))`;
//! - the REST API: `auth_signature` over `METHOD\nPATH\nQUERY`;
//! - webhooks: `X-Pusher-Signature: hex(HMAC(secret, body))`.
//!
//! Every check compares in constant time (`Mac::verify_slice`).

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use thiserror::Error;

/// How far a REST call's `auth_timestamp` may be from the server's clock,
/// in seconds, as Pusher allows.
pub const REST_TIMESTAMP_TOLERANCE_SECS: u64 = 600;
/// The only REST signature version there is.
const AUTH_VERSION: &str = "1.0";

fn mac(secret: &str, parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

fn hex_mac(secret: &str, parts: &[&[u8]]) -> String {
    hex::encode(mac(secret, parts).finalize().into_bytes())
}

fn verify_hex(secret: &str, parts: &[&[u8]], given_hex: &str) -> bool {
    match hex::decode(given_hex) {
        Ok(given) => mac(secret, parts).verify_slice(&given).is_ok(),
        Err(_) => false,
    }
}

/// What a channel subscription or a sign-in signs.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// `socket_id:channel`, for private and encrypted channels.
    Channel { socket_id: &'a str, channel: &'a str },
    /// `socket_id:channel:channel_data`, with the client's exact
    /// `channel_data` string (never re-serialised).
    Presence { socket_id: &'a str, channel: &'a str, channel_data: &'a str },
    /// `socket_id::user::user_data`, for `pusher:signin`.
    SignIn { socket_id: &'a str, user_data: &'a str },
}

impl Signed<'_> {
    fn parts(&self) -> Vec<&[u8]> {
        match *self {
            Signed::Channel { socket_id, channel } => vec![socket_id.as_bytes(), b":", channel.as_bytes()],
            Signed::Presence { socket_id, channel, channel_data } => {
                vec![socket_id.as_bytes(), b":", channel.as_bytes(), b":", channel_data.as_bytes()]
            }
            Signed::SignIn { socket_id, user_data } => vec![socket_id.as_bytes(), b"::user::", user_data.as_bytes()],
        }
    }

    /// The `auth` value an app's auth endpoint returns for this.
    pub fn auth(&self, key: &str, secret: &str) -> String {
        format!("{key}:{}", hex_mac(secret, &self.parts()))
    }

    /// Whether `auth` is `"<key>:<signature>"` for this, with this app's key.
    pub fn verify(&self, key: &str, secret: &str, auth: &str) -> bool {
        match auth.split_once(':') {
            Some((given_key, signature)) => given_key == key && verify_hex(secret, &self.parts(), signature),
            None => false,
        }
    }
}

/// The `X-Pusher-Signature` of a webhook body.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    hex_mac(secret, &[body])
}

/// Why a REST call's signature was refused; each says what to fix, in
/// Pusher's words where Pusher has them (its API answers these with 401 and
/// the message as the body).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestAuthError {
    #[error("Missing {0} in the query")]
    Missing(&'static str),
    #[error("Unknown auth_key")]
    UnknownKey,
    #[error("Unsupported auth_version: it must be 1.0")]
    Version,
    #[error("auth_timestamp is not a number of seconds")]
    BadTimestamp,
    #[error(
        "Timestamp expired: Given timestamp ({given}) not within {REST_TIMESTAMP_TOLERANCE_SECS}s of server time ({now})"
    )]
    Stale { given: u64, now: u64 },
    #[error("Invalid body_md5: it is not the MD5 of the body")]
    BodyMd5,
    #[error(
        "Invalid signature: you should have sent HmacSHA256Hex({to_sign:?}, your_secret_key), but you sent {given:?}"
    )]
    Signature { to_sign: String, given: String },
}

/// A REST call as it arrived, for [`verify_rest`].
#[derive(Debug, Clone, Copy)]
pub struct RestCall<'a> {
    pub method: &'a str,
    /// The path as the client signed it: `/apps/<id>/...`.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub body: &'a [u8],
}

/// The lowercase hex MD5 of a body, as `body_md5` carries it.
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// `METHOD\nPATH\nQUERY`, the query being every parameter but
/// `auth_signature`, keys lower-cased and sorted, `k=v` joined with `&`,
/// values unescaped.
fn string_to_sign(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<_> = params.iter().filter(|(key, _)| key != "auth_signature").collect();
    sorted.sort();
    let query: Vec<String> = sorted.iter().map(|(key, value)| format!("{key}={value}")).collect();
    format!("{}\n{path}\n{}", method.to_ascii_uppercase(), query.join("&"))
}

fn decoded_params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.to_ascii_lowercase(), value.into_owned()))
        .collect()
}

/// Checks a REST call's signature against the app with `key` and `secret`:
/// the key, the version, the timestamp (within 600 s of `now_secs`), the
/// body's MD5, and the HMAC.
pub fn verify_rest(key: &str, secret: &str, call: &RestCall<'_>, now_secs: u64) -> Result<(), RestAuthError> {
    let params = decoded_params(call.query);
    let param = |name: &'static str| {
        params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).ok_or(RestAuthError::Missing(name))
    };
    if param("auth_key")? != key {
        return Err(RestAuthError::UnknownKey);
    }
    if param("auth_version")? != AUTH_VERSION {
        return Err(RestAuthError::Version);
    }
    let timestamp: u64 = param("auth_timestamp")?.parse().map_err(|_| RestAuthError::BadTimestamp)?;
    if timestamp.abs_diff(now_secs) > REST_TIMESTAMP_TOLERANCE_SECS {
        return Err(RestAuthError::Stale { given: timestamp, now: now_secs });
    }
    match param("body_md5") {
        Ok(md5) if md5 != body_md5(call.body) => return Err(RestAuthError::BodyMd5),
        Err(missing) if !call.body.is_empty() => return Err(missing),
        _ => {}
    }
    let signature = param("auth_signature")?;
    let to_sign = string_to_sign(call.method, call.path, &params);
    if verify_hex(secret, &[to_sign.as_bytes()], signature) {
        Ok(())
    } else {
        Err(RestAuthError::Signature { to_sign, given: signature.to_owned() })
    }
}

/// The signed query string of a REST call, as Pusher's server SDKs make it
/// (for clients of Herald's Pusher API written here, such as tests).
pub fn sign_rest(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &[u8],
    timestamp: u64,
) -> String {
    let mut all: Vec<(String, String)> =
        params.iter().map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())).collect();
    all.push(("auth_key".into(), key.into()));
    all.push(("auth_timestamp".into(), timestamp.to_string()));
    all.push(("auth_version".into(), AUTH_VERSION.into()));
    if !body.is_empty() {
        all.push(("body_md5".into(), body_md5(body)));
    }
    let signature = hex_mac(secret, &[string_to_sign(method, path, &all).as_bytes()]);
    all.push(("auth_signature".into(), signature));
    form_urlencoded::Serializer::new(String::new()).extend_pairs(all).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pusher's published vectors (pusher-http-php tests, Pusher's docs).
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn private_channel_vector() {
        let signed = Signed::Channel { socket_id: "1234.1234", channel: "private-foobar" };
        let auth = signed.auth(KEY, SECRET);
        assert_eq!(auth, format!("{KEY}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"));
        assert!(signed.verify(KEY, SECRET, &auth));
    }

    #[test]
    fn presence_channel_vector() {
        let channel_data = r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#;
        let signed = Signed::Presence { socket_id: "1234.1234", channel: "presence-foobar", channel_data };
        let auth = signed.auth(KEY, SECRET);
        assert_eq!(auth, format!("{KEY}:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"));
        assert!(signed.verify(KEY, SECRET, &auth));
        // The exact string is signed: the same JSON spelled otherwise fails.
        let respelled = r#"{"user_id": 10,"user_info":{"name":"Mr. Pusher"}}"#;
        let other = Signed::Presence { socket_id: "1234.1234", channel: "presence-foobar", channel_data: respelled };
        assert!(!other.verify(KEY, SECRET, &auth));
    }

    #[test]
    fn sign_in_signs_the_user_data() {
        let signed = Signed::SignIn { socket_id: "1234.1234", user_data: r#"{"id":"12345"}"# };
        // hex(HMAC-SHA256(SECRET, "1234.1234::user::{\"id\":\"12345\"}")), computed with Python's hmac module.
        assert_eq!(
            signed.auth(KEY, SECRET),
            format!("{KEY}:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba")
        );
    }

    #[test]
    fn channel_auth_refuses_other_keys_sockets_and_garbage() {
        let signed = Signed::Channel { socket_id: "1234.1234", channel: "private-foobar" };
        let auth = signed.auth(KEY, SECRET);
        assert!(!signed.verify("otherkey", SECRET, &auth));
        assert!(!signed.verify(KEY, "othersecret", &auth));
        assert!(!Signed::Channel { socket_id: "1234.1235", channel: "private-foobar" }.verify(KEY, SECRET, &auth));
        for garbage in ["", ":", "nocolon", &format!("{KEY}:zz"), &format!("{KEY}:")] {
            assert!(!signed.verify(KEY, SECRET, garbage), "{garbage:?}");
        }
    }

    #[test]
    fn webhook_vector() {
        assert_eq!(
            webhook_signature("thisisasecret", br#"{"hello":"world"}"#),
            "40e0ad3b9aa49529322879e84de1aaaf18bde1efe839ca263d540cc865510d25"
        );
    }

    const BODY: &[u8] = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    const SIGNED_QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

    fn call(query: &str) -> RestCall<'_> {
        RestCall { method: "POST", path: "/apps/3/events", query, body: BODY }
    }

    #[test]
    fn rest_vector() {
        assert_eq!(body_md5(BODY), "ec365a775a4cd0599faeb73354201b6f");
        assert_eq!(verify_rest(KEY, SECRET, &call(SIGNED_QUERY), 1_353_088_179), Ok(()));
        assert_eq!(sign_rest(KEY, SECRET, "POST", "/apps/3/events", &[], BODY, 1_353_088_179), SIGNED_QUERY);
    }

    #[test]
    fn rest_signatures_cover_every_parameter_in_any_order_and_case() {
        let query = sign_rest(
            KEY,
            SECRET,
            "GET",
            "/apps/3/channels",
            &[("info", "user_count"), ("FILTER_by_prefix", "presence-")],
            b"",
            1000,
        );
        let get = |query| RestCall { method: "GET", path: "/apps/3/channels", query, body: b"" };
        assert_eq!(verify_rest(KEY, SECRET, &get(&query), 1000), Ok(()));
        let reordered = query.split('&').rev().collect::<Vec<_>>().join("&");
        assert_eq!(verify_rest(KEY, SECRET, &get(&reordered), 1000), Ok(()));
        let tampered = query.replace("user_count", "subscription_count");
        let refused = verify_rest(KEY, SECRET, &get(&tampered), 1000).unwrap_err();
        assert!(matches!(refused, RestAuthError::Signature { .. }));
        assert!(
            refused.to_string().starts_with(
                r#"Invalid signature: you should have sent HmacSHA256Hex("GET\n/apps/3/channels\nauth_key="#
            ),
            "{refused}"
        );
    }

    #[test]
    fn rest_refusals_say_why() {
        let at = 1_353_088_179;
        let stale = verify_rest(KEY, SECRET, &call(SIGNED_QUERY), at + 601).unwrap_err();
        assert_eq!(stale, RestAuthError::Stale { given: at, now: at + 601 });
        assert_eq!(
            stale.to_string(),
            "Timestamp expired: Given timestamp (1353088179) not within 600s of server time (1353088780)"
        );
        assert_eq!(verify_rest(KEY, SECRET, &call(SIGNED_QUERY), at - 600), Ok(()));
        assert_eq!(verify_rest("otherkey", SECRET, &call(SIGNED_QUERY), at), Err(RestAuthError::UnknownKey));
        let other_body = RestCall { body: b"{}", ..call(SIGNED_QUERY) };
        assert_eq!(verify_rest(KEY, SECRET, &other_body, at), Err(RestAuthError::BodyMd5));
        let without_md5 = SIGNED_QUERY.replace("&body_md5=ec365a775a4cd0599faeb73354201b6f", "");
        assert_eq!(verify_rest(KEY, SECRET, &call(&without_md5), at), Err(RestAuthError::Missing("body_md5")));
        assert_eq!(
            verify_rest(KEY, SECRET, &call("auth_key=278d425bdf160c739803"), at),
            Err(RestAuthError::Missing("auth_version"))
        );
        let version = SIGNED_QUERY.replace("auth_version=1.0", "auth_version=2.0");
        assert_eq!(verify_rest(KEY, SECRET, &call(&version), at), Err(RestAuthError::Version));
        let timestamp = SIGNED_QUERY.replace("1353088179", "soon");
        assert_eq!(verify_rest(KEY, SECRET, &call(&timestamp), at), Err(RestAuthError::BadTimestamp));
    }
}
