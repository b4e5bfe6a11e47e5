//! The routes file parser (`HERALD_ROUTES_FILE`, reloaded on SIGHUP): a
//! bad file must be refused with an error that says why, never crash the
//! router or half-load.
//!
//! - Parsing never panics; a refusal is a `RoutesError` with a message.
//! - An accepted table keeps its promises: timeouts within bounds, NATS
//!   subjects without wildcards, HTTP(S) URLs, and every action the file
//!   routes finds a route (its own, or an earlier one that matches too).

use herald_router::routes::{Handler, Route};
use herald_router::{MAX_ROUTE_TIMEOUT, RouteTable};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let table = match RouteTable::parse(text) {
        Ok(table) => table,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    assert_eq!(RouteTable::parse(text).as_ref(), Ok(&table), "parsing is deterministic");

    // The actions the file names, read on their own.
    let file: toml::Table = toml::from_str(text).expect("an accepted routes file is TOML");
    let actions = file.get("routes").and_then(toml::Value::as_array).into_iter().flatten();
    let mut http = false;
    for action in actions.filter_map(|route| route.get("action")?.as_str()) {
        // A pattern `p*` is matched by `p` itself.
        let name = action.strip_suffix('*').unwrap_or(action);
        let name = if name == "$default" { "any/other/action" } else { name };
        let route = table.route_for(name).unwrap_or_else(|| panic!("no route for {name:?} (from {action:?})"));
        check(route);
        http |= matches!(route.handler, Handler::Http(_));
    }
    if http {
        assert!(table.has_http_routes());
    }
    assert!(table.route_for("$ping").is_none(), "system actions have no ordinary routes");
    assert_eq!(table.route_for("$leave"), table.join.as_ref());
}

fn check(route: &Route) {
    assert!(!route.timeout.is_zero() && route.timeout <= MAX_ROUTE_TIMEOUT, "{route:?}");
    match &route.handler {
        Handler::Nats(subject) => {
            assert!(subject.split('.').all(|t| !t.is_empty() && t != "*" && t != ">"), "{subject:?}");
        }
        Handler::Http(url) => assert!(matches!(url.scheme(), "http" | "https"), "{url}"),
    }
}
