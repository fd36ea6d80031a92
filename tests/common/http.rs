//! A real HTTP client for the `serve` tests: one request, its whole answer.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A whole answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map_or("", |v| v.to_str().unwrap())
    }

    /// The body of a JSON answer.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.content_type(), "application/json", "{:?}", self.body);
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The `error` message of a JSON error answer with `status`.
    pub fn error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{:?}", self.body);
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_string()
    }
}

/// Requests to one server through one client (which keeps connections alive between them).
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    /// A client of the server at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_string(),
        }
    }

    /// `method path` with `headers` and `body`; panics naming the path if no answer comes.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = self
            .client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer: {e:?}"));
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], Vec::new()).await
    }

    /// `POST /api/predict` with the photo's bytes.
    pub async fn predict(&self, body: Vec<u8>) -> Answer {
        self.send(Method::POST, "/api/predict", &[], body).await
    }
}
