//! Which gateways of a run can be measured here, asked once before the
//! steps: a gateway that is not installed, or a Herald that does not speak
//! Pusher yet, has its steps skipped with the reason, never faked.
//!
//! Only a clear "not there" skips: a missing program, or Herald answering
//! 404 where the Pusher surfaces would be. A gateway that is there but
//! fails its probe in any other way is measured anyway, so its steps fail
//! with the real error instead of being quietly skipped.

use std::collections::BTreeMap;
use std::path::Path;

use tokio_tungstenite::tungstenite::Error as WsError;

use super::servers::{self, Contender, Environment, PUSHER_APP_ID, PUSHER_APP_KEY, SOKETI_SERVER};
use crate::protocol::pusher::{self, Trigger};
use crate::publish::{http_client, unix_nanos};

/// The probe's event, to a channel no receiver is on.
const PROBE_FRAME: &str = r#"{"action":"probe","details":{}}"#;
const PROBE_CHANNEL: &str = "herald-bench-probe";

/// Why each gateway of `contenders` that cannot be measured here is not.
pub async fn unavailable(contenders: &[Contender], env: &Environment) -> BTreeMap<Contender, String> {
    let mut skipped = BTreeMap::new();
    let herald_pusher = contenders.iter().any(|c| matches!(c, Contender::HeraldPusher | Contender::HeraldPusherRest));
    let edge = if herald_pusher { herald_edge(env).await } else { None };
    for &contender in contenders {
        let why = match contender {
            Contender::HeraldPusher => edge.clone(),
            Contender::HeraldPusherRest => match &edge {
                Some(why) => Some(why.clone()),
                None => herald_router(env).await,
            },
            Contender::Soketi if !env.peers.join(SOKETI_SERVER).is_file() => Some(format!(
                "soketi is not installed ({} is missing): npm ci --prefix {}",
                env.peers.join(SOKETI_SERVER).display(),
                env.peers.display()
            )),
            Contender::Sockudo if !is_program(&env.sockudo) => Some(format!(
                "sockudo is not installed ({} not found): cargo install sockudo --locked --version 5.2.0 (a \
                 long build; `just bench` installs it, CI does not)",
                env.sockudo.display()
            )),
            _ => None,
        };
        if let Some(why) = why {
            skipped.insert(contender, why);
        }
    }
    skipped
}

/// Whether `program` is a file, or a name found on `PATH`.
fn is_program(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Why Herald's edge cannot be measured as a Pusher server: it answers
/// 404 on `/app/<key>` with the app configured.
async fn herald_edge(env: &Environment) -> Option<String> {
    let (edge, addr) = servers::gateway(Contender::HeraldPusher, env).await.ok()?;
    let url = pusher::receiver_url(&Contender::HeraldPusher.url(addr));
    let answer = tokio_tungstenite::connect_async(&url).await;
    edge.stop().await;
    match answer {
        Err(WsError::Http(response)) if response.status() == 404 => Some(format!(
            "Herald's edge answers 404 on /app/{PUSHER_APP_KEY} with a Pusher app configured: it does not speak \
             the Pusher protocol yet"
        )),
        _ => None,
    }
}

/// Why Herald's router cannot be published to as a Pusher server: it
/// answers 404 to a signed trigger.
async fn herald_router(env: &Environment) -> Option<String> {
    let (router, api) = servers::pusher_router(env).await.ok()?;
    let trigger = Trigger::new(&api, PUSHER_APP_ID, PUSHER_APP_KEY, &env.token_secret, PROBE_CHANNEL);
    let body = trigger.body(PROBE_FRAME).expect("the probe is a frame");
    let url = trigger.signed_url(&body, unix_nanos() / 1_000_000_000);
    let answer = match http_client() {
        Ok(http) => Some(http.post(url).header("content-type", "application/json").body(body).send().await),
        Err(_) => None,
    };
    router.stop().await;
    match answer {
        Some(Ok(response)) if response.status() == 404 => Some(format!(
            "Herald's router answers 404 on /apps/{PUSHER_APP_ID}/events with a Pusher app configured: it has \
             no Pusher HTTP API yet"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_by_path_or_on_path() {
        assert!(is_program(Path::new("sh")));
        assert!(is_program(Path::new("/bin/sh")));
        assert!(!is_program(Path::new("herald-bench-no-such-program")));
        assert!(!is_program(Path::new("/nonexistent/sockudo")));
    }
}
