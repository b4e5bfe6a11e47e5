//! Workerman's push example, run by real `php`, against Herald's push port:
//! the backend changes one address and nothing else.

use herald_tests::SILENCE;
use serde_json::json;
use tokio::process::Command;

use crate::setup::{Herald, Layout};

both_layouts!(workermans_push_example_pushes);

/// Runs `workerman_push.php` with `lines`: the answer to each.
async fn push(herald: &Herald, lines: &[&str]) -> Vec<String> {
    let script = herald_tests::php::repo().join("sdk/php/tests/integration/workerman_push.php");
    let output = Command::new(std::env::var("PHP_BIN").unwrap_or_else(|_| "php".to_owned()))
        .arg(script)
        .arg(herald.push_port.to_string())
        .args(lines)
        .output()
        .await
        .expect("run php");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

async fn workermans_push_example_pushes(layout: Layout) {
    let herald = Herald::start(layout, "").await;
    let mut uid1 = herald.user("uid1", &[]).await;
    let mut numeric = herald.user("42", &[]).await;

    let answers = push(
        &herald,
        &[
            r#"{"uid":"uid1","percent":"88%"}"#,
            r#"{"uid":42,"action":"progress","details":{"percent":50}}"#,
            r#"{"uid":"offline","percent":"1%"}"#,
            "not json",
            r#"{"percent":"no uid"}"#,
            r#"{"uid":"uid1","percent":"still here"}"#,
        ],
    )
    .await;
    assert_eq!(
        answers,
        ["ok", "ok", "fail", "error not JSON: expected ident at line 1 column 2", "error no uid", "ok"]
    );
    assert_eq!(uid1.recv().await, json!({"action": "push", "details": {"percent": "88%"}}));
    assert_eq!(numeric.recv().await, json!({"action": "progress", "details": {"percent": 50}}));
    assert_eq!(uid1.recv().await, json!({"action": "push", "details": {"percent": "still here"}}));
    uid1.expect_silence(SILENCE).await;
    numeric.expect_silence(SILENCE).await;
}
