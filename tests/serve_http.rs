//! `gridsearch serve` over plain HTTP: a real photo's attributes and similar catalogue photos,
//! the error answers (not an image, empty, too large, unknown photo), nothing written to disk,
//! a clean stop on SIGTERM, and one-line errors for bad options.

mod common;

use axum::http::StatusCode;
use common::http::Http;
use common::{gridsearch, tiny_shop, Server};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Similar photos asked for.
const K: usize = 4;

/// Every file under `dirs` with its size and modification time.
fn files(dirs: &[&Path]) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut found = BTreeMap::new();
    let mut pending: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path);
            } else {
                found.insert(path, (meta.len(), meta.modified().unwrap()));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_photos_and_errors_over_http_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shop = tiny_shop(dir.path(), 5);
    let (cwd, tmp) = (dir.path().join("cwd"), dir.path().join("tmp"));
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let mut args = shop.serve_args();
    args.extend(["-k", &K.to_string(), "--max-upload-mb", "1"].map(String::from));
    let server = Server::start(&cwd, &tmp, &dir.path().join("serve.err"), &args);
    let watched = [
        shop.models.as_path(),
        &shop.catalogue,
        &cwd,
        &tmp,
        shop.index.parent().unwrap(),
    ];
    let before = files(&watched);
    let http = Http::new(&server.url);

    // The page and the model cards.
    let page = http.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type().starts_with("text/html"));
    assert!(String::from_utf8_lossy(&page.body).contains("id=\"photo\""));
    let cards = http.get("/api/models").await.json();
    let studies: Vec<&str> = cards
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["study"].as_str().unwrap())
        .collect();
    assert_eq!(studies, ["department", "heel"]);

    // A real photo: every attribute, a probability per label summing to 1, K similar photos
    // best first, each served as the catalogue's own bytes.
    let answer = http.predict(std::fs::read(&shop.photo).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let answer = answer.json();
    let attributes = answer["attributes"].as_array().unwrap();
    let names: Vec<&str> = attributes
        .iter()
        .map(|a| a["attribute"].as_str().unwrap())
        .collect();
    assert_eq!(names, studies);
    for attribute in attributes {
        let labels = attribute["labels"].as_array().unwrap();
        let probabilities: Vec<f64> = attribute["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(probabilities.len(), labels.len(), "{attribute}");
        assert!(probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
        let sum: f64 = probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{attribute}: sum {sum}");
    }
    let similar = answer["similar"].as_array().unwrap();
    assert_eq!(similar.len(), K, "{answer}");
    let mut last = f64::INFINITY;
    for (i, s) in similar.iter().enumerate() {
        assert_eq!(s["rank"], i + 1);
        let similarity = s["similarity"].as_f64().unwrap();
        assert!(similarity <= last && similarity > 0.0, "{answer}");
        last = similarity;
        let photo = http.get(s["url"].as_str().unwrap()).await;
        assert_eq!(photo.status, StatusCode::OK, "{s}");
        assert_eq!(photo.content_type(), "image/jpeg");
        let file = shop.catalogue.join(s["path"].as_str().unwrap());
        assert_eq!(photo.body, std::fs::read(file).unwrap(), "{s}");
    }

    // Errors: JSON with a message, and the right status.
    let text = http
        .predict(b"just some text, not a photo\n".to_vec())
        .await;
    let message = text.error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(message.contains("not a readable image ("), "{message}");
    let empty = http.predict(Vec::new()).await;
    assert!(empty.error(StatusCode::BAD_REQUEST).contains("empty"));
    let large = http.predict(vec![0xff; 2 * 1024 * 1024]).await;
    let message = large.error(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(message.contains("1 MiB"), "{message}");
    let unknown = http.get("/catalogue/999999").await;
    assert!(unknown.error(StatusCode::NOT_FOUND).contains("999999"));
    let not_a_row = http.get("/catalogue/..%2F..%2Fetc%2Fpasswd").await;
    not_a_row.error(StatusCode::NOT_FOUND);

    // Uploads were decoded in memory: no file appeared or changed anywhere the server could
    // write (its index was written before it listened).
    let after = files(&watched);
    let written: Vec<&PathBuf> = after
        .iter()
        .filter(|(path, stamp)| before.get(*path) != Some(stamp))
        .map(|(path, _)| path)
        .collect();
    assert!(written.is_empty(), "written during uploads: {written:?}");
    assert_eq!(after.len(), before.len(), "files removed during uploads");
    assert!(server.stop().success(), "SIGTERM is a clean stop");
}

#[test]
fn bad_options_exit_2_with_one_line_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let check = |args: &[&str], expect: &[&str]| {
        let out = gridsearch(&db, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        for fragment in expect {
            assert!(stderr.contains(fragment), "{fragment:?} missing: {stderr}");
        }
    };
    let none = dir.path().join("no-models");
    let none = none.to_str().unwrap();
    check(&["serve", "--port", "0", "--models", none], &[none]);

    check(
        &[
            "serve",
            "--port",
            "0",
            "--models",
            none,
            "--allow-host",
            "shop.example:80",
        ],
        &["--allow-host", "shop.example:80", "no port"],
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    check(
        &["serve", "--port", &port, "--models", none],
        &[&format!("127.0.0.1:{port}"), "--port"],
    );

    let shop = tiny_shop(dir.path(), 1);
    let missing = dir.path().join("no-catalogue");
    let mut args: Vec<String> = ["serve", "--port", "0"].map(String::from).to_vec();
    args.extend(shop.serve_args());
    let at = args.iter().position(|a| a == "--catalogue").unwrap();
    args[at + 1] = missing.display().to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check(&args, &[missing.to_str().unwrap()]);
}
