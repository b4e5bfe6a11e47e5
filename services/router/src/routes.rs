//! The routes table: which handler answers which client action.
//!
//! Read from a TOML file, validated as a whole (a bad file never half-loads),
//! with errors that name the route and the field.

use std::path::Path;
use std::time::Duration;

use herald_proto::client::action;
use herald_proto::pattern::Pattern;
use reqwest::Url;
use serde::Deserialize;
use thiserror::Error;

/// Route timeout when the file gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
/// Longest route timeout: an edge waits for its router only so long, and a
/// draining router finishes its requests within it.
pub const MAX_ROUTE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_TIMEOUT_MS: u64 = MAX_ROUTE_TIMEOUT.as_millis() as u64;

/// Why a routes file was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RoutesError {
    #[error("cannot read routes file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("routes file is not valid TOML: {0}")]
    Syntax(String),
    #[error("route {index} ({action:?}): {field}: {problem}")]
    Route { index: usize, action: String, field: &'static str, problem: String },
}

/// Where a route's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// A NATS subject answered by request/reply.
    Nats(String),
    /// A URL answered by HTTP POST.
    Http(Url),
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The action pattern as written, for logs.
    pub action: String,
    pattern: Pattern,
    pub handler: Handler,
    pub timeout: Duration,
}

/// Every route, in file order, with the special routes set apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    /// Ordinary routes: first match wins.
    routes: Vec<Route>,
    /// `$connect`: authenticates upgrades without a token.
    pub connect: Option<Route>,
    /// `$disconnect`: told when connections end.
    pub disconnect: Option<Route>,
    /// `$join`: authorises joins and leaves the token does not.
    pub join: Option<Route>,
    /// `$default`: whatever no other route matches.
    pub default: Option<Route>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    routes: Vec<RouteSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    action: String,
    nats: Option<String>,
    http: Option<String>,
    timeout_ms: Option<u64>,
}

impl RouteTable {
    pub fn load(path: &Path) -> Result<RouteTable, RoutesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RoutesError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        RouteTable::parse(&text)
    }

    pub fn parse(text: &str) -> Result<RouteTable, RoutesError> {
        let file: RoutesFile = toml::from_str(text).map_err(|e| RoutesError::Syntax(e.to_string()))?;
        let mut table = RouteTable::default();
        for (i, spec) in file.routes.into_iter().enumerate() {
            let index = i + 1;
            let route = Route::from_spec(index, spec)?;
            let special = match route.action.as_str() {
                action::CONNECT => Some(&mut table.connect),
                action::DISCONNECT => Some(&mut table.disconnect),
                action::JOIN => Some(&mut table.join),
                action::DEFAULT => Some(&mut table.default),
                _ => None,
            };
            match special {
                Some(slot) if slot.is_some() => {
                    return Err(route.problem(index, "action", "this special route is already defined"));
                }
                Some(slot) => *slot = Some(route),
                None => table.routes.push(route),
            }
        }
        Ok(table)
    }

    /// The route for a client action: the first ordinary route that matches,
    /// else `$default`. System actions only ever match their special route.
    pub fn route_for(&self, name: &str) -> Option<&Route> {
        match name {
            action::CONNECT => self.connect.as_ref(),
            action::DISCONNECT => self.disconnect.as_ref(),
            action::JOIN | action::LEAVE => self.join.as_ref(),
            _ if action::is_system(name) => None,
            _ => self.routes.iter().find(|route| route.pattern.matches(name)).or(self.default.as_ref()),
        }
    }

    /// Whether any route calls an HTTP handler (which needs a webhook secret).
    pub fn has_http_routes(&self) -> bool {
        self.routes
            .iter()
            .chain(&self.connect)
            .chain(&self.disconnect)
            .chain(&self.join)
            .chain(&self.default)
            .any(|route| matches!(route.handler, Handler::Http(_)))
    }
}

impl Route {
    fn from_spec(index: usize, spec: RouteSpec) -> Result<Route, RoutesError> {
        let problem = |field, problem: &str| RoutesError::Route {
            index,
            action: spec.action.clone(),
            field,
            problem: problem.to_owned(),
        };
        validate_action(&spec.action).map_err(|p| problem("action", p))?;
        let handler = match (&spec.nats, &spec.http) {
            (Some(subject), None) => Handler::Nats(validate_subject(subject).map_err(|p| problem("nats", p))?),
            (None, Some(url)) => Handler::Http(validate_url(url).map_err(|p| problem("http", &p))?),
            (Some(_), Some(_)) => return Err(problem("nats", "give either nats or http, not both")),
            (None, None) => return Err(problem("nats", "give a handler: nats = \"subject\" or http = \"url\"")),
        };
        let timeout = match spec.timeout_ms {
            None => DEFAULT_TIMEOUT,
            Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Duration::from_millis(ms),
            Some(_) => return Err(problem("timeout_ms", &format!("must be between 1 and {MAX_TIMEOUT_MS}"))),
        };
        Ok(Route { pattern: Pattern::new(&spec.action), action: spec.action, handler, timeout })
    }

    fn problem(&self, index: usize, field: &'static str, problem: &str) -> RoutesError {
        RoutesError::Route { index, action: self.action.clone(), field, problem: problem.to_owned() }
    }
}

fn validate_action(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if action::is_system(name) {
        return match name {
            action::CONNECT | action::DISCONNECT | action::JOIN | action::DEFAULT => Ok(()),
            _ => Err("the only special routes are $connect, $disconnect, $join and $default"),
        };
    }
    match name.find('*') {
        Some(at) if at != name.len() - 1 => Err("\"*\" may only end a pattern"),
        _ => Ok(()),
    }
}

fn validate_subject(subject: &str) -> Result<String, &'static str> {
    let valid = subject
        .split('.')
        .all(|token| !token.is_empty() && token != "*" && token != ">" && !token.contains(|c: char| c.is_whitespace()));
    if valid { Ok(subject.to_owned()) } else { Err("not a NATS subject without wildcards") }
}

fn validate_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(format!("scheme {other:?} is not http or https")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        [[routes]]
        action = "chat/*"
        nats = "app.chat"
        timeout_ms = 2000

        [[routes]]
        action = "account/*"
        http = "http://php-app.local/ws-handler.php"

        [[routes]]
        action = "$connect"
        http = "http://php-app.local/connect.php"

        [[routes]]
        action = "$default"
        nats = "app.fallback"
    "#;

    #[test]
    fn reads_routes_in_order_and_sets_special_ones_apart() {
        let table = RouteTable::parse(EXAMPLE).unwrap();
        let chat = table.route_for("chat/send").unwrap();
        assert_eq!(chat.handler, Handler::Nats("app.chat".into()));
        assert_eq!(chat.timeout, Duration::from_millis(2000));
        let account = table.route_for("account/delete").unwrap();
        assert!(matches!(&account.handler, Handler::Http(url) if url.path() == "/ws-handler.php"));
        assert_eq!(account.timeout, DEFAULT_TIMEOUT);
        assert_eq!(table.route_for("other").unwrap().action, "$default");
        assert_eq!(table.route_for("$connect").unwrap().action, "$connect");
        assert!(table.route_for("$join").is_none());
        assert!(table.route_for("$ping").is_none());
        assert!(table.has_http_routes());
    }

    #[test]
    fn first_match_wins() {
        let table = RouteTable::parse(
            r#"
            [[routes]]
            action = "chat/admin"
            nats = "a"
            [[routes]]
            action = "chat/*"
            nats = "b"
        "#,
        )
        .unwrap();
        assert_eq!(table.route_for("chat/admin").unwrap().handler, Handler::Nats("a".into()));
        assert_eq!(table.route_for("chat/x").unwrap().handler, Handler::Nats("b".into()));
        assert!(table.route_for("news").is_none());
    }

    #[test]
    fn errors_name_the_route_and_the_field() {
        let error = |text: &str| RouteTable::parse(text).unwrap_err().to_string();
        assert_eq!(
            error("[[routes]]\naction = \"a\"\nnats = \"x\"\n[[routes]]\naction = \"b\"\nnats = \"y\"\ntimeout_ms = 0"),
            "route 2 (\"b\"): timeout_ms: must be between 1 and 60000"
        );
        assert_eq!(
            error("[[routes]]\naction = \"a*b\"\nnats = \"x\""),
            "route 1 (\"a*b\"): action: \"*\" may only end a pattern"
        );
        assert_eq!(
            error("[[routes]]\naction = \"a\"\nnats = \"x.>\""),
            "route 1 (\"a\"): nats: not a NATS subject without wildcards"
        );
        assert_eq!(
            error("[[routes]]\naction = \"a\"\nhttp = \"ftp://x\""),
            "route 1 (\"a\"): http: scheme \"ftp\" is not http or https"
        );
        assert_eq!(
            error("[[routes]]\naction = \"a\"\nnats = \"x\"\nhttp = \"http://x\""),
            "route 1 (\"a\"): nats: give either nats or http, not both"
        );
        assert_eq!(
            error("[[routes]]\naction = \"$ping\"\nnats = \"x\""),
            "route 1 (\"$ping\"): action: the only special routes are $connect, $disconnect, $join and $default"
        );
        assert_eq!(
            error("[[routes]]\naction = \"$join\"\nnats = \"x\"\n[[routes]]\naction = \"$join\"\nnats = \"y\""),
            "route 2 (\"$join\"): action: this special route is already defined"
        );
        assert!(
            error("[[routes]]\naction = \"a\"\nnats = \"x\"\ntimeout = 5").starts_with("routes file is not valid TOML")
        );
    }

    #[test]
    fn join_routes_answer_joins_and_leaves() {
        let table = RouteTable::parse("[[routes]]\naction = \"$join\"\nnats = \"auth.join\"").unwrap();
        assert!(table.route_for("$join").is_some());
        assert!(table.route_for("$leave").is_some());
        assert!(!table.has_http_routes());
    }
}
