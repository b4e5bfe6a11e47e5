//! What `herald dev` prints once it serves: everything a developer needs to
//! try it at once, ready to paste. It goes to standard output with
//! `println!`, not through the logger, so a quiet `HERALD_LOG` still shows
//! it.

use std::net::SocketAddr;

use super::token::Tokens;

/// The user the printed token is for.
const USER: &str = "dev";

/// Prints the demo's URL, a token for [`USER`] with the WebSocket URL that
/// uses it, the API key, and a publish to everyone with it.
pub fn print(addr: SocketAddr, tokens: &Tokens, api_key: &str) {
    println!("{}", banner(addr, &tokens.mint(USER), api_key));
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
}
