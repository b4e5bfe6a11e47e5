//! A tiny HTTP/1.1 client over a plain `TcpStream`, enough for `/healthz`,
//! `/readyz`, `/metrics` and the router's backend API: `Connection: close`,
//! read to the end, status and body. Being this plain, it sends exactly what
//! a test asks for (bad JSON, a huge body, no `Authorization` at all).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(5);

/// `GET path` on `addr`; returns the status and the body as text.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {addr}: no answer within {TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    parse(&response).unwrap_or_else(|| {
        panic!("GET {path} on {addr}: not an HTTP response: {:?}", String::from_utf8_lossy(&response))
    })
}

/// `method path` on `addr` with `headers` and `body`; returns the status and
/// the body as text. The body is written while the answer is read, so a
/// server that answers early (413) and closes is seen answering, not as a
/// failed write.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let answer = exchange(addr, method, path, headers, body).await;
    (answer.status, answer.body)
}

/// An HTTP answer with its headers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, value)| value.as_str())
    }
}

/// Like [`request`], with the answer's headers (a `Set-Cookie`, a
/// `Location`).
pub async fn exchange(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    let exchange = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut reader, mut writer) = stream.into_split();
        let writing = tokio::spawn(async move {
            // The server may answer and close before it has read it all.
            let _ = writer.write_all(&message).await;
            writer
        });
        let mut response = Vec::new();
        // A reset after the answer arrived (unread body) is no failure:
        // what was read is kept.
        let read = reader.read_to_end(&mut response).await;
        drop(writing.await);
        match read {
            Err(e) if response.is_empty() => Err(e),
            _ => Ok(response),
        }
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} on {addr}: no answer within {TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"));
    parse_answer(&response).unwrap_or_else(|| {
        panic!("{method} {path} on {addr}: not an HTTP response: {:?}", String::from_utf8_lossy(&response))
    })
}

/// A call to the router's backend API: `body` as JSON (none when `None`),
/// `Authorization: Bearer <key>` when `key` is given. Returns the status and
/// the answer, which must be JSON.
pub async fn api(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>, key: Option<&str>) -> (u16, Value) {
    let authorization = key.map(|key| format!("Bearer {key}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(authorization) = &authorization {
        headers.push(("Authorization", authorization.as_str()));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    let (status, text) = request(addr, method, path, &headers, body.as_bytes()).await;
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: answer {status} is not JSON ({e}): {text:?}"));
    (status, json)
}

/// The value of an unlabelled counter or gauge in a Prometheus text page.
pub fn metric(page: &str, name: &str) -> Option<u64> {
    page.lines().find_map(|line| {
        let (metric, value) = line.split_once(' ')?;
        (metric == name).then(|| value.trim().parse().ok()).flatten()
    })
}

fn parse(response: &[u8]) -> Option<(u16, String)> {
    parse_answer(response).map(|answer| (answer.status, answer.body))
}

fn parse_answer(response: &[u8]) -> Option<Answer> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..split]).ok()?;
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Some(Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_chunked_bodies() {
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), Some((200, "ok".to_owned())));
        assert_eq!(
            parse(b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n3\r\nnot\r\n6\r\n ready\r\n0\r\n\r\n"),
            Some((503, "not ready".to_owned()))
        );
    }
}
