//! Subject tokens: user ids and group names as one NATS subject token.
//! Edges decode the last token of `<prefix>.ctl.user.<U>`, which any
//! backend may publish to.
//!
//! - `encode_token` always gives one token that no wildcard or separator
//!   can escape, and `decode_token` gives the name back.
//! - `decode_token` accepts only canonical tokens: whatever it accepts
//!   encodes back to the same token, so two tokens never name one user.
//! - A subject built from any name has exactly one token for it.

use herald_proto::subject::{BadToken, Subjects, decode_token, encode_token};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };

    let token = encode_token(text);
    assert!(!token.is_empty());
    assert!(!token.contains(['.', '*', '>', ' ', '\t', '\r', '\n', '\0']), "{token:?}");
    assert_eq!(decode_token(&token).as_deref(), Ok(text));

    match decode_token(text) {
        Ok(name) => assert_eq!(encode_token(&name), text),
        Err(BadToken(refused)) => assert_eq!(refused, text),
    }

    let subjects = Subjects::default();
    for subject in [subjects.user(text), subjects.group(text), subjects.ctl_user(text)] {
        let last = subject.rsplit('.').next().unwrap();
        assert_eq!(last, token, "{subject:?}");
        assert_eq!(decode_token(last).as_deref(), Ok(text));
    }
}
