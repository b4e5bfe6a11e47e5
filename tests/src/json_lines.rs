//! A driver process spoken to in JSON lines: one command per line on its
//! stdin, one answer per line on its stdout. The PHP SDK's driver
//! ([`crate::PhpDriver`]) and Pusher's server SDKs' drivers
//! ([`crate::pusher_sdk::SdkDriver`]) are such processes.

use std::fmt::Debug;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A running driver, killed on drop.
#[derive(Debug)]
pub struct JsonLines<N: Debug> {
    /// Names the driver in failures.
    name: N,
    /// How long one command may take.
    timeout: Duration,
    stdin: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
    _child: Child,
}

impl<N: Debug> JsonLines<N> {
    /// Runs `command` (its stderr is the test's).
    pub fn spawn(name: N, mut command: Command, timeout: Duration) -> JsonLines<N> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run the {name:?} driver: {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let answers = BufReader::new(child.stdout.take().expect("stdout")).lines();
        JsonLines { name, timeout, stdin, answers, _child: child }
    }

    pub fn name(&self) -> &N {
        &self.name
    }

    /// Sends one command and returns its answer.
    pub async fn send(&mut self, command: &Value) -> Value {
        let name = &self.name;
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap_or_else(|e| panic!("{name:?}: write to the driver: {e}"));
        let answer = tokio::time::timeout(self.timeout, self.answers.next_line())
            .await
            .unwrap_or_else(|_| panic!("{name:?}: no answer to {command} within {:?}", self.timeout))
            .unwrap_or_else(|e| panic!("{name:?}: read from the driver: {e}"))
            .unwrap_or_else(|| panic!("{name:?}: the driver exited on {command}"));
        serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("{name:?}: answer to {command} is not JSON ({e}): {answer}"))
    }
}
