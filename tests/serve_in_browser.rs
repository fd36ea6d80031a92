//! The `serve` page in a real headless Chromium driven by chromedriver: a photo picked in the
//! file input shows every attribute with the label `predict` gives, the similar catalogue
//! photos load, and a text file or one over the upload limit shows the server's message.

mod common;

use common::{gridsearch, ok, tiny_shop, Server};
use fantoccini::{Client, ClientBuilder, Locator};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Similar photos asked for.
const K: usize = 4;

/// chromedriver on a free port in its own process group, which is killed when dropped (also
/// when the test fails, so no browser outlives it).
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "no chromedriver");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let options = serde_json::json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1000"],
        "binary": CHROMIUM,
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// What the page shows: each attribute's highlighted label and its bars' widths (%), the
/// similar photos' pixel widths once loaded (0 before), and the error line.
const PAGE_STATE: &str = r#"
const rows = [...document.querySelectorAll(".attribute")];
return {
  top: Object.fromEntries(rows.map((r) =>
    [r.dataset.attribute, r.querySelector(".label.top .name").textContent])),
  bars: rows.map((r) => [...r.querySelectorAll(".bar > span")].map((s) => parseFloat(s.style.width))),
  images: [...document.querySelectorAll(".similar img")].map((i) => i.complete ? i.naturalWidth : 0),
  sources: [...document.querySelectorAll(".similar img")].map((i) => i.getAttribute("src")),
  error: document.getElementById("error").textContent,
};
"#;

/// Poll the page state until `done` holds (up to a minute).
async fn wait_for(client: &Client, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let state = client.execute(PAGE_STATE, Vec::new()).await.unwrap();
        if done(&state) {
            return state;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the page did not get there: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each attribute's most probable label, as `gridsearch predict --json` says.
fn predicted_tops(db: &Path, models: &Path, photo: &Path) -> BTreeMap<String, String> {
    let args = [
        "predict",
        "--json",
        "--models",
        models.to_str().unwrap(),
        photo.to_str().unwrap(),
    ];
    let json: serde_json::Value = serde_json::from_str(&ok(&gridsearch(db, &args))).unwrap();
    json[0]["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let probabilities: Vec<f64> = p["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let best = (0..probabilities.len()).fold(0, |b, i| {
                if probabilities[i] > probabilities[b] {
                    i
                } else {
                    b
                }
            });
            let attribute = p["attribute"].as_str().unwrap().to_string();
            (attribute, p["labels"][best].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_attributes_similar_photos_and_errors_in_chromium() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "chromium or chromedriver is missing under CI: .ci/run installs them \
                 (apt-get install chromium chromium-driver)"
            );
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED the_page_shows_attributes_similar_photos_and_errors_in_chromium: \
             no {CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver) !!!!!!!!\n"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shop = tiny_shop(dir.path(), 5);
    let expected = predicted_tops(&dir.path().join("runs/gs.db"), &shop.models, &shop.photo);
    assert_eq!(expected.len(), 2, "{expected:?}");
    let mut args = shop.serve_args();
    args.extend(["-k", &K.to_string(), "--max-upload-mb", "1"].map(String::from));
    let server = Server::start(dir.path(), dir.path(), &dir.path().join("serve.err"), &args);
    let driver = Driver::start();
    let client = browser(&driver).await;

    client.goto(&server.url).await.unwrap();
    let input = client.find(Locator::Css("#photo")).await.unwrap();
    input
        .send_keys(shop.photo.canonicalize().unwrap().to_str().unwrap())
        .await
        .unwrap();
    let state = wait_for(&client, |s| {
        let images = s["images"].as_array().unwrap();
        images.len() == K && images.iter().all(|w| w.as_u64() > Some(0))
    })
    .await;
    let shown: BTreeMap<String, String> = serde_json::from_value(state["top"].clone()).unwrap();
    assert_eq!(shown, expected, "the page's top labels are predict's");
    for bars in state["bars"].as_array().unwrap() {
        let total: f64 = bars
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_f64().unwrap())
            .sum();
        assert!((total - 100.0).abs() < 0.5, "bar widths {bars}");
    }
    for source in state["sources"].as_array().unwrap() {
        assert!(
            source.as_str().unwrap().starts_with("/catalogue/"),
            "{source}"
        );
    }
    assert_eq!(state["error"], "");
    let shot = client.screenshot().await.unwrap();
    assert!(shot.starts_with(b"\x89PNG"));
    if let Ok(keep) = std::env::var("GRIDSEARCH_KEEP_SCREENSHOT") {
        std::fs::write(keep, &shot).unwrap();
    }

    // A text file: the server's reason replaces the results.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a photo\n").unwrap();
    input.send_keys(text.to_str().unwrap()).await.unwrap();
    let state = wait_for(&client, |s| s["error"] != "").await;
    let error = state["error"].as_str().unwrap();
    assert!(error.starts_with("not a readable image ("), "{error}");
    assert_eq!(state["top"], serde_json::json!({}), "old results cleared");
    assert_eq!(state["images"], serde_json::json!([]));

    // Over the upload limit: the browser gets the server's 413 message, not a broken connection.
    let large = dir.path().join("large.jpg");
    std::fs::write(&large, vec![0xff; 2 * 1024 * 1024]).unwrap();
    input.send_keys(large.to_str().unwrap()).await.unwrap();
    let state = wait_for(&client, |s| s["error"].as_str().unwrap().contains("limit")).await;
    let error = state["error"].as_str().unwrap();
    assert!(error.contains("over the upload limit of 1 MiB"), "{error}");
    client.close().await.unwrap();
}
