use herald_bus::RequestError;
use herald_examples::Example;
use herald_examples::echo::SUBJECT;
use herald_proto::subject::Subjects;
use serde_json::json;

use crate::support::{Nats, Running, action, request, request_json};

#[tokio::test]
async fn echoes_details_byte_for_byte() {
    let nats = Nats::start().await;
    let echo = Running::start(Example::Echo, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;

    // Spacing, number forms and escapes survive: the details are never
    // re-encoded.
    let details = r#"{"b": 1.50, "a": [ ], "s": "\u00e9", "n": 1e3}"#;
    let payload = format!(
        r#"{{"action":"echo","details":{details},"id":"x","conn":"0123456789abcdef.1","user":null,"groups":[],"claims":{{}}}}"#
    );
    assert_eq!(request(&bus, SUBJECT, payload).await, format!(r#"{{"details":{details}}}"#));

    let answer = request(&bus, SUBJECT, action("echo", json!(null), Some("ann"), &[])).await;
    assert_eq!(answer, r#"{"details":null}"#);
    let answer = request(&bus, SUBJECT, action("echo", json!("hi"), Some("ann"), &[])).await;
    assert_eq!(answer, r#"{"details":"hi"}"#);

    echo.stop().await;
}

#[tokio::test]
async fn whoami_tells_the_client_who_it_is() {
    let nats = Nats::start().await;
    let echo = Running::start(Example::Echo, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;

    let whoami = json!({"whoami": true});
    let answer = request_json(&bus, SUBJECT, action("echo", whoami.clone(), Some("ann"), &["team", "room:a"])).await;
    assert_eq!(answer, json!({"details": {"conn": "0123456789abcdef.1", "user": "ann", "groups": ["team", "room:a"]}}));
    let answer = request_json(&bus, SUBJECT, action("echo", whoami, None, &[])).await;
    assert_eq!(answer, json!({"details": {"conn": "0123456789abcdef.1", "user": null, "groups": []}}));

    // Anything else is echoed, even if it mentions whoami.
    for details in [json!({"whoami": false}), json!({"whoami": true, "and": 1}), json!({"whoami": "yes"})] {
        let answer = request_json(&bus, SUBJECT, action("echo", details.clone(), Some("ann"), &[])).await;
        assert_eq!(answer, json!({ "details": details }));
    }

    echo.stop().await;
}

#[tokio::test]
async fn stopping_leaves_the_queue_group() {
    let nats = Nats::start().await;
    let echo = Running::start(Example::Echo, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;
    request(&bus, SUBJECT, action("echo", json!(1), None, &[])).await;

    echo.stop().await;

    let payload = action("echo", json!(1), None, &[]).into();
    let outcome = bus.request(SUBJECT.to_owned(), payload, std::time::Duration::from_secs(1)).await;
    assert!(matches!(&outcome, Err(RequestError::NoResponders(subject)) if subject == SUBJECT), "{outcome:?}");
}
