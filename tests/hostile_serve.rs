//! `gridsearch serve` against hostile clients, one row per case, on the real binary: slow
//! headers, stalled and oversized uploads, more requests than `--max-requests`, a foreign Host
//! (DNS rebinding), a cross-origin POST, `nosniff`, error bodies without server paths, and a
//! stop within seconds of SIGTERM while a connection hangs half-sent.

mod common;

use axum::http::{Method, StatusCode};
use common::http::Http;
use common::{tiny_shop, Server};
use gridsearch::serve::{BODY_STALL, HEADER_TIMEOUT, SHUTDOWN_GRACE};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What a loaded machine may add to a documented time before the test calls it broken.
const SLACK: Duration = Duration::from_secs(5);
/// Requests the server under test handles at once.
const MAX_REQUESTS: usize = 2;

/// A raw connection to the server that has sent `start`.
fn connect(url: &str, start: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream.write_all(start).unwrap();
    stream
}

/// Keep `stream` open, sending `trickle` (if any) a byte every half second, until the server
/// closes it or `bound` passes: what it answered and when it closed (None: still open).
fn until_closed(
    mut stream: TcpStream,
    trickle: bool,
    bound: Duration,
) -> (String, Option<Duration>) {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    while start.elapsed() < bound {
        match stream.read(&mut buffer) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&answer).into(),
                    Some(start.elapsed()),
                )
            }
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if trickle && stream.write_all(b"x").is_err() {
                    return (
                        String::from_utf8_lossy(&answer).into(),
                        Some(start.elapsed()),
                    );
                }
            }
            Err(_) => {
                return (
                    String::from_utf8_lossy(&answer).into(),
                    Some(start.elapsed()),
                )
            }
        }
    }
    (String::from_utf8_lossy(&answer).into(), None)
}

/// A request refused (or, as a control, served) at once.
struct Refusal<'a> {
    name: &'a str,
    method: Method,
    path: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    status: StatusCode,
    /// A fragment of the answer's error message.
    says: &'a str,
}

/// A client that sends `start`, then (if `trickle`) a byte every half second.
struct SlowClient {
    name: &'static str,
    start: Vec<u8>,
    trickle: bool,
    /// The answer's status line start, or "" for a close without an answer.
    status: &'static str,
    /// The documented time within which the server closes the connection.
    closed_within: Duration,
}

/// An upload request's head declaring `length` bytes, followed by `sent` of them.
fn upload_start(length: u64, sent: &str) -> Vec<u8> {
    format!(
        "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n{sent}"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_cuts_off_refuses_and_stops_whatever_clients_do() {
    let dir = tempfile::tempdir().unwrap();
    let shop = tiny_shop(dir.path(), 2);
    let log = dir.path().join("serve.err");
    let mut args = shop.serve_args();
    let max = MAX_REQUESTS.to_string();
    args.extend(
        [
            "--max-upload-mb",
            "1",
            "--max-requests",
            &max,
            "--allow-host",
            "Shop.Example",
        ]
        .map(String::from),
    );
    let server = Server::start(dir.path(), dir.path(), &log, &args);
    let url = server.url.clone();
    let host = url.trim_start_matches("http://").to_string();

    // Quick refusals, each a JSON error and each with nosniff.
    let own_origin = format!("http://{host}");
    let refusals = [
        Refusal {
            name: "a foreign Host (DNS rebinding)",
            method: Method::GET,
            path: "/api/models",
            headers: vec![("host", "evil.example:8080")],
            status: StatusCode::FORBIDDEN,
            says: "--allow-host",
        },
        Refusal {
            name: "a cross-origin POST",
            method: Method::POST,
            path: "/api/predict",
            headers: vec![("origin", "http://evil.example")],
            status: StatusCode::FORBIDDEN,
            says: "cross-origin",
        },
        Refusal {
            name: "a cross-site POST by Sec-Fetch-Site",
            method: Method::POST,
            path: "/api/predict",
            headers: vec![("sec-fetch-site", "cross-site"), ("origin", &own_origin)],
            status: StatusCode::FORBIDDEN,
            says: "cross-origin",
        },
        Refusal {
            name: "a same-origin POST of text is read (and is no image)",
            method: Method::POST,
            path: "/api/predict",
            headers: vec![("sec-fetch-site", "same-origin"), ("origin", &own_origin)],
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            says: "not a readable image",
        },
    ];
    for row in refusals {
        let answer = Http::new(&url)
            .send(row.method, row.path, &row.headers, b"not a photo".to_vec())
            .await;
        let message = answer.error(row.status);
        assert!(message.contains(row.says), "{}: {message}", row.name);
        let sniffing = &answer.headers["x-content-type-options"];
        assert_eq!(sniffing, "nosniff", "{}", row.name);
    }
    let page = Http::new(&url)
        .send(Method::GET, "/", &[], b"".to_vec())
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    let named = [("host", "shop.example:8080")];
    let by_name = Http::new(&url)
        .send(Method::GET, "/api/models", &named, b"".to_vec())
        .await;
    assert_eq!(
        by_name.status,
        StatusCode::OK,
        "an --allow-host name is answered"
    );

    // A catalogue photo gone since the index was made: 404 without the server's path, which
    // goes to its log instead.
    let moved = dir.path().join("catalogue-moved");
    std::fs::rename(&shop.catalogue, &moved).unwrap();
    let gone = Http::new(&url)
        .send(Method::GET, "/catalogue/0", &[], b"".to_vec())
        .await;
    let message = gone.error(StatusCode::NOT_FOUND);
    assert!(!message.contains('/'), "a path in {message:?}");
    assert_eq!(gone.headers["x-content-type-options"], "nosniff");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(shop.catalogue.to_str().unwrap()),
        "{logged}"
    );
    std::fs::rename(&moved, &shop.catalogue).unwrap();

    // More requests than --max-requests: with that many uploads stalled in the handler, the
    // next request is answered 503 at once; once they go, requests are served again.
    let stalled: Vec<TcpStream> = (0..MAX_REQUESTS)
        .map(|_| connect(&url, &upload_start(1000, "ab")))
        .collect();
    let start = Instant::now();
    let busy = loop {
        let answer = Http::new(&url)
            .send(Method::GET, "/api/models", &[], b"".to_vec())
            .await;
        if answer.status != StatusCode::OK || start.elapsed() > SLACK {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let message = busy.error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(message.contains("--max-requests"), "{message}");
    assert_eq!(busy.headers["retry-after"], "1");
    drop(stalled);
    let start = Instant::now();
    while Http::new(&url)
        .send(Method::GET, "/api/models", &[], b"".to_vec())
        .await
        .status
        != StatusCode::OK
    {
        assert!(
            start.elapsed() < SLACK,
            "still busy after the stalled uploads left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Slow clients, all at once.
    let two_gb = 2u64 << 30;
    let slow = [
        SlowClient {
            name: "headers sent a byte at a time (slowloris)",
            start: b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".to_vec(),
            trickle: true,
            status: "",
            closed_within: HEADER_TIMEOUT,
        },
        SlowClient {
            name: "a connection that sends nothing",
            start: Vec::new(),
            trickle: false,
            status: "",
            closed_within: HEADER_TIMEOUT,
        },
        SlowClient {
            name: "an upload declaring 2 GiB, 1 byte sent",
            start: upload_start(two_gb, "x"),
            trickle: false,
            status: "HTTP/1.1 413 ",
            closed_within: Duration::ZERO,
        },
        SlowClient {
            name: "an upload under the limit that stalls after 1 byte",
            start: upload_start(100_000, "x"),
            trickle: false,
            status: "HTTP/1.1 408 ",
            closed_within: BODY_STALL,
        },
    ];
    let clients: Vec<_> = slow
        .into_iter()
        .map(|row| {
            let stream = connect(&url, &row.start);
            std::thread::spawn(move || {
                let (name, status, bound) = (row.name, row.status, row.closed_within + SLACK);
                let (answer, closed) = until_closed(stream, row.trickle, bound);
                assert!(closed.is_some(), "{name}: still open after {bound:?}");
                assert!(answer.starts_with(status), "{name}: {answer:?}");
                if !status.is_empty() {
                    assert!(answer.contains("connection: close"), "{name}: {answer:?}");
                    assert!(answer.contains("\r\n\r\n{\"error\":"), "{name}: {answer:?}");
                }
                eprintln!(
                    "{name}: closed after {:.1} s",
                    closed.unwrap().as_secs_f64()
                );
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a slow-client row failed");
    }

    // SIGTERM while a request hangs half-sent: the server exits within its grace anyway.
    let _half_open = connect(&url, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    assert!(server.stop().success(), "SIGTERM is a clean stop");
    let took = start.elapsed();
    eprintln!("SIGTERM with a half-open connection: exited after {took:?}");
    assert!(took < SHUTDOWN_GRACE + SLACK, "exit took {took:?}");
}
