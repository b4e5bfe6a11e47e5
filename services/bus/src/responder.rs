//! Answering requests: the loop every request/reply service runs (routers,
//! and handlers written with the handler SDK).
//!
//! At most `limit` requests are worked on at once; more are answered at once
//! with the `overloaded` answer, so a busy responder sheds load instead of
//! queuing it. On stop, the subscription is drained
//! ([`QueueSubscription::until_drained`]): NATS gives new requests to the
//! other members of the queue group, the requests already on their way here
//! are still answered, and the answers are flushed before `serve` returns.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use tracing::Instrument;

use crate::queue::Answers;
use crate::{Bus, QueueSubscription, trace};

/// How a responder answers and how much it takes on.
pub struct Responder<F> {
    /// Names the span of each request (it continues the trace the request
    /// carries, if any).
    pub span_name: &'static str,
    /// Answers one request payload.
    pub answer: F,
    /// Requests worked on at once.
    pub limit: usize,
    /// The answer to a request beyond the limit.
    pub overloaded: Bytes,
}

impl<F> fmt::Debug for Responder<F> {
    /// The limit; the answering function has nothing to show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder").field("limit", &self.limit).finish_non_exhaustive()
    }
}

impl<F, Fut> Responder<F>
where
    F: Fn(Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Bytes> + Send + 'static,
{
    /// Answers the requests of `requests` until `stop` resolves, then drains
    /// and returns once every request taken has been answered.
    pub async fn serve(self, bus: &Bus, requests: QueueSubscription, stop: impl Future<Output = ()>) {
        let answer = Arc::new(self.answer);
        let permits = Arc::new(Semaphore::new(self.limit));
        let mut tasks = JoinSet::new();
        let answers = requests.answers(bus);
        let requests = requests.until_drained(stop);
        tokio::pin!(requests);
        while let Some(message) = requests.next().await {
            while tasks.try_join_next().is_some() {}
            let Some(reply) = message.reply().map(str::to_owned) else { continue };
            let answers = answers.clone();
            match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let answer = answer.clone();
                    let span = tracing::info_span!(
                        target: trace::TARGET,
                        "request",
                        otel.name = self.span_name,
                        otel.kind = "server",
                        subject = message.subject(),
                    );
                    trace::continue_trace(&span, &message);
                    let answered = async move {
                        let payload = answer(message.payload).await;
                        respond(&answers, reply, payload).await;
                        drop(permit);
                    };
                    tasks.spawn(answered.instrument(span));
                }
                Err(_) => {
                    tracing::debug!("overloaded: refusing a request");
                    let overloaded = self.overloaded.clone();
                    tasks.spawn(async move { respond(&answers, reply, overloaded).await });
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        // The last answers may still sit in the connection's write buffer;
        // a process that exits next must not lose them.
        if let Err(e) = answers.flush().await {
            tracing::warn!(error = %e, "could not flush the last answers");
        }
    }
}

async fn respond(answers: &Answers, reply: String, payload: Bytes) {
    if let Err(e) = answers.send(reply, payload).await {
        tracing::warn!(error = %e, "could not send an answer");
    }
}
