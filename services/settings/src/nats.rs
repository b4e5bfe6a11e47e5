//! NATS: how to reach it, and what Herald calls its subjects there. Edges
//! and routers must agree on both, so every role reads these; `herald dev`,
//! which has no NATS, still names its subjects.

use herald_proto::subject::{self, Subjects};

use std::time::Duration;

use crate::setting::settings;
use crate::value::{comma_list, millis, text};

settings! {
    /// How to reach NATS.
    CONNECTION;
    /// NATS servers, comma-separated.
    NATS_URL: Vec<String> = new("URLS", "nats://127.0.0.1:4222", urls);
    /// Connection name shown in NATS monitoring; `herald-<command>` when unset.
    NATS_NAME: String = optional("NAME", text);
    /// How often a NATS connection pings a server it hears nothing from; one silent for 2-3 of these is left for another. Raise it where NATS may be seconds behind (a subscribe storm on a busy server).
    NATS_PING_INTERVAL_MS: Duration = new("MS", "2000", millis::<1>);
}

settings! {
    /// What Herald calls its subjects.
    SUBJECTS;
    /// First token(s) of every NATS subject Herald uses.
    SUBJECT_PREFIX: Subjects = new("PREFIX", subject::DEFAULT_PREFIX, subject_prefix);
}

/// One or more URLs, comma-separated. Whether each is a NATS URL is the bus
/// client's to judge, when it connects.
fn urls(value: &str) -> Result<Vec<String>, String> {
    let urls = comma_list(value);
    if urls.is_empty() { Err("expected one or more NATS URLs, comma-separated".to_owned()) } else { Ok(urls) }
}

fn subject_prefix(value: &str) -> Result<Subjects, String> {
    Subjects::new(value)
        .map_err(|_| "expected a NATS subject prefix: dot-separated tokens of A-Z a-z 0-9 _ -".to_owned())
}
