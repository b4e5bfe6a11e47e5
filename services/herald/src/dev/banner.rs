//! What `herald dev` prints once it serves: everything a developer needs to
//! try it at once, ready to paste. It goes to standard output with
//! `println!`, not through the logger, so a quiet `HERALD_LOG` still shows
//! it.

use std::net::SocketAddr;

use herald_proto::pusher::app::App;

use super::token::Tokens;

/// The user the printed token is for.
const USER: &str = "dev";

/// Prints the demo's URL, a token for [`USER`] with the WebSocket URL that
/// uses it, the API key, a publish to everyone with it, and what points a
/// Laravel app at the Pusher app.
pub fn print(addr: SocketAddr, tokens: &Tokens, api_key: &str, pusher: &App) {
    println!("{}{}", banner(addr, &tokens.mint(USER), api_key), laravel(addr, pusher));
}

fn banner(addr: SocketAddr, token: &str, api_key: &str) -> String {
    let publish = r#"{"to": {"all": true}, "action": "news", "details": {"text": "hello"}}"#;
    format!(
        "\n\
         Herald dev: an edge, a router, the example handlers and the demo, in one process.\n\
         \n  Open the demo:     http://{addr}/\n\
         \n  Connect as {USER} (the token is valid for an hour; more at http://{addr}/dev/token?user=<name>):\n\
         \x20   ws://{addr}/ws?token={token}\n\
         \n  API key:           {api_key}\n\
         \n  Publish to everyone:\n\
         \x20   curl -H 'Authorization: Bearer {api_key}' -d '{publish}' http://{addr}/api/publish\n"
    )
}

/// The `.env` lines and the `new Echo({...})` call for the Pusher app, and
/// the variables that keep its secret across restarts.
fn laravel(addr: SocketAddr, app: &App) -> String {
    let (host, port, id, key, secret) = (addr.ip(), addr.port(), &app.id, &app.key, &app.secret);
    format!(
        "\n  Laravel (.env; BROADCAST_DRIVER before Laravel 11):\n\
         \x20   BROADCAST_CONNECTION=pusher\n\
         \x20   PUSHER_APP_ID={id}\n\
         \x20   PUSHER_APP_KEY={key}\n\
         \x20   PUSHER_APP_SECRET={secret}\n\
         \x20   PUSHER_HOST={host}\n\
         \x20   PUSHER_PORT={port}\n\
         \x20   PUSHER_SCHEME=http\n\
         \x20   PUSHER_APP_CLUSTER=mt1\n\
         \x20   VITE_PUSHER_APP_KEY=\"${{PUSHER_APP_KEY}}\"\n\
         \x20   VITE_PUSHER_HOST=\"${{PUSHER_HOST}}\"\n\
         \x20   VITE_PUSHER_PORT=\"${{PUSHER_PORT}}\"\n\
         \x20   VITE_PUSHER_SCHEME=\"${{PUSHER_SCHEME}}\"\n\
         \x20   VITE_PUSHER_APP_CLUSTER=\"${{PUSHER_APP_CLUSTER}}\"\n\
         \n  Laravel Echo:\n\
         \x20   new Echo({{ broadcaster: 'pusher', key: '{key}', cluster: 'mt1', wsHost: '{host}', wsPort: {port}, \
         wssPort: {port}, forceTLS: false, enabledTransports: ['ws', 'wss'] }})\n\
         \n  Keep this Pusher app across restarts:\n\
         \x20   HERALD_PUSHER_APP_ID={id} HERALD_PUSHER_KEY={key} HERALD_PUSHER_SECRET={secret}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_ready_to_use() {
        let text = banner("127.0.0.1:8080".parse().unwrap(), "T0KEN", "K3Y");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert!(lines.contains(&"Open the demo:     http://127.0.0.1:8080/"), "{text}");
        assert!(lines.contains(&"ws://127.0.0.1:8080/ws?token=T0KEN"), "{text}");
        assert!(lines.contains(&"API key:           K3Y"), "{text}");
        assert!(lines.contains(
            &r#"curl -H 'Authorization: Bearer K3Y' -d '{"to": {"all": true}, "action": "news", "details": {"text": "hello"}}' http://127.0.0.1:8080/api/publish"#
        ), "{text}");
    }

    #[test]
    fn the_laravel_lines_name_the_app_and_the_address() {
        let text = laravel("127.0.0.1:8080".parse().unwrap(), &App::new("herald-dev", "the-key", "the-secret"));
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for line in [
            "BROADCAST_CONNECTION=pusher",
            "PUSHER_APP_ID=herald-dev",
            "PUSHER_APP_KEY=the-key",
            "PUSHER_APP_SECRET=the-secret",
            "PUSHER_HOST=127.0.0.1",
            "PUSHER_PORT=8080",
            "PUSHER_SCHEME=http",
            r#"VITE_PUSHER_HOST="${PUSHER_HOST}""#,
            "new Echo({ broadcaster: 'pusher', key: 'the-key', cluster: 'mt1', wsHost: '127.0.0.1', wsPort: 8080, \
             wssPort: 8080, forceTLS: false, enabledTransports: ['ws', 'wss'] })",
            "HERALD_PUSHER_APP_ID=herald-dev HERALD_PUSHER_KEY=the-key HERALD_PUSHER_SECRET=the-secret",
        ] {
            assert!(lines.contains(&line), "{line} in {text}");
        }
    }
}
