//! Decompression bombs and very big photos: refused from their headers (one line each, the
//! real photos beside them still used), big JPEGs decoded at reduced scale, and the peak memory
//! of the real binary bounded. The bombs are made here, at test time.

mod common;

use common::{
    grid_text, gridsearch, ok, repo, run_and_export, shipped_photos, trial_rows, write, Server,
};
use gridsearch::data::decode::{decode_bytes, DecodeError};
use image::imageops::FilterType;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The documented bound on `predict`'s peak RSS over bombs and photos: the 512 MiB decode
/// budget plus the model and runtime, under 1 GB (main peaked at 3.2 GB on such a folder).
const PREDICT_PEAK_RSS: u64 = 1_000_000_000;

/// The documented bound on `serve`'s peak RSS under 8 bomb uploads at once (main, with 4 at
/// once: 4.4 GB).
const SERVE_PEAK_RSS: u64 = 1_000_000_000;

/// The documented bound on `run`'s peak RSS over class folders holding bombs beside photos.
const RUN_PEAK_RSS: u64 = 1_000_000_000;

/// 35 bytes: an 11,500 px square screen holding one 1 x 1 frame; the decoder's canvas is the
/// whole screen (main: 0.98 GB).
fn gif_bomb(path: &Path) -> PathBuf {
    let side = 11_500u16.to_le_bytes();
    let mut gif = b"GIF89a".to_vec();
    gif.extend([side[0], side[1], side[0], side[1], 0x80, 0, 0]);
    gif.extend([0, 0, 0, 255, 255, 255]); // two-colour table
    gif.extend([b',', 0, 0, 0, 0, 1, 0, 1, 0, 0]); // a 1 x 1 frame at 0,0
    gif.extend([2, 2, 0x44, 0x01, 0, b';']); // LZW: clear, pixel 0, end
    std::fs::write(path, gif).unwrap();
    path.to_path_buf()
}

/// A shipped 136 x 102 photo whose frame header claims 13,000 px square (main: 1.06 GB).
fn jpeg_bomb(path: &Path) -> PathBuf {
    let mut jpeg = std::fs::read(repo().join("data/footwear/boot/boot_0030.jpg")).unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let side = 13_000u16.to_be_bytes();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[side[0], side[1], side[0], side[1]]);
    std::fs::write(path, jpeg).unwrap();
    path.to_path_buf()
}

/// A real, valid grey PNG of 16,384 px square (a few hundred KB; main: over 1 GB to decode).
fn png_bomb(path: &Path) -> PathBuf {
    image::GrayImage::new(16_384, 16_384).save(path).unwrap();
    path.to_path_buf()
}

fn bombs(dir: &Path) -> Vec<PathBuf> {
    vec![
        gif_bomb(&dir.join("bomb.gif")),
        jpeg_bomb(&dir.join("bomb.jpg")),
        png_bomb(&dir.join("bomb.png")),
    ]
}

/// A 6000 x 4000 camera-sized JPEG: shipped photos tiled at their own resolution (so it has
/// real detail at full scale), encoded at quality 90.
fn camera_jpeg() -> Vec<u8> {
    let photos: Vec<image::RgbImage> = ["boot", "sandal", "shoe"]
        .iter()
        .flat_map(|d| shipped_photos(d).into_iter().take(40))
        .map(|p| image::open(p).unwrap().into_rgb8())
        .collect();
    let mut mosaic = image::RgbImage::new(6000, 4000);
    for (i, (x, y)) in (0..4000)
        .step_by(102)
        .flat_map(|y| (0..6000).step_by(136).map(move |x| (x, y)))
        .enumerate()
    {
        image::imageops::replace(&mut mosaic, &photos[i % photos.len()], x, y);
    }
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&mosaic)
        .unwrap();
    bytes
}

/// What decoding was before the budget: the whole image, to RGB, resized.
fn full_decode(bytes: &[u8], size: u32) -> Vec<u8> {
    let rgb = image::load_from_memory(bytes).unwrap().into_rgb8();
    image::imageops::resize(&rgb, size, size, FilterType::Triangle).into_raw()
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    total as f64 / a.len() as f64
}

#[test]
fn bombs_are_refused_from_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let [gif, jpeg, png] = <[PathBuf; 3]>::try_from(bombs(dir.path())).unwrap();
    let refusal = |p: &Path| decode_bytes(&std::fs::read(p).unwrap(), 224).unwrap_err();
    for too_big in [gif, png] {
        let err = refusal(&too_big);
        assert!(matches!(err, DecodeError::TooBig(_)), "{err:?}");
        assert!(err.to_string().contains("over the 256 MiB"), "{err}");
    }
    let err = refusal(&jpeg);
    assert!(matches!(err, DecodeError::Unreadable(_)), "{err:?}");
    assert!(err.to_string().contains("claims 13000x13000"), "{err}");
}

#[test]
fn a_camera_jpeg_decodes_at_reduced_scale_to_nearly_the_full_decode() {
    let bytes = camera_jpeg();
    for size in [64, 224] {
        let reduced = decode_bytes(&bytes, size as usize).unwrap();
        let diff = mean_abs_diff(&reduced, &full_decode(&bytes, size));
        eprintln!("{size} px: mean abs diff {diff:.3} from the full decode");
        assert!(diff < 1.0, "{size} px: mean abs diff {diff:.2}");
    }
}

#[test]
fn jpegs_up_to_the_threshold_decode_exactly_as_before() {
    // 4096 x 4096 is the largest a JPEG may be and still be decoded in full.
    let photo = image::open(&shipped_photos("shoe")[0]).unwrap();
    let big = photo
        .resize_exact(4096, 4096, FilterType::Triangle)
        .into_rgb8();
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&big)
        .unwrap();
    assert_eq!(decode_bytes(&bytes, 224).unwrap(), full_decode(&bytes, 224));
    let shipped = std::fs::read(repo().join("data/footwear/boot/boot_0030.jpg")).unwrap();
    assert_eq!(
        decode_bytes(&shipped, 64).unwrap(),
        full_decode(&shipped, 64)
    );
}

/// Run `cmd` to its end; its exit code, stderr and peak resident set size in bytes (wait4).
fn run_measured(mut cmd: Command) -> (Option<i32>, String, u64) {
    #[expect(
        clippy::zombie_processes,
        reason = "reaped below by wait4, for its rusage"
    )]
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value, and wait4 writes only into the two locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // ru_maxrss is in KiB on Linux.
    (code, reader.join().unwrap(), usage.ru_maxrss as u64 * 1024)
}

#[test]
fn predict_and_index_skip_each_bomb_in_one_line_and_stay_within_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let models = run_and_export(dir.path(), &db, "one", (6, 3), "learning_rate = [0.003]");
    let catalogue = dir.path().join("catalogue");
    std::fs::create_dir_all(&catalogue).unwrap();
    let bombs = bombs(&catalogue);
    let camera = catalogue.join("camera.jpg");
    std::fs::write(&camera, camera_jpeg()).unwrap();
    let mut photos = vec![camera];
    for department in ["boot", "sandal", "shoe"] {
        for photo in shipped_photos(department).into_iter().take(3) {
            let copy = catalogue.join(photo.file_name().unwrap());
            std::fs::copy(&photo, &copy).unwrap();
            photos.push(copy);
        }
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridsearch"));
    cmd.args(["--quiet", "predict", "--json", "--models"])
        .arg(&models)
        .args(&bombs)
        .args(&photos);
    let (code, stderr, peak) = run_measured(cmd);
    eprintln!("predict peak RSS: {} MB", peak / 1_000_000);
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), bombs.len(), "{stderr}");
    for (line, bomb) in lines.iter().zip(&bombs) {
        let start = format!("error: {}: not a readable image (", bomb.display());
        assert!(line.starts_with(&start), "{line}");
    }
    assert!(
        peak < PREDICT_PEAK_RSS,
        "predict peaked at {} MB",
        peak / 1_000_000
    );
    // The photos beside the bombs are still predicted.
    let out = gridsearch(
        &db,
        &[
            "predict",
            "--json",
            "--models",
            models.to_str().unwrap(),
            photos[0].to_str().unwrap(),
            photos[1].to_str().unwrap(),
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(rows[0]["predictions"].is_array(), "{rows}");

    let index = dir.path().join("index.safetensors");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridsearch"));
    cmd.args(["--quiet", "index"])
        .arg(&catalogue)
        .arg("--index")
        .arg(&index)
        .arg("--weights")
        .arg(repo().join("models/efficientnet_lite0.safetensors"))
        .args(["--image-size", "64"]);
    let (code, stderr, peak) = run_measured(cmd);
    eprintln!("index peak RSS: {} MB", peak / 1_000_000);
    assert_eq!(code, Some(0), "{stderr}");
    let mut warned: Vec<&str> = stderr.lines().collect();
    warned.sort();
    assert_eq!(warned.len(), bombs.len(), "{stderr}");
    for (line, bomb) in warned.iter().zip(&bombs) {
        let start = format!(
            "warning: {}: skipped, not a readable image (",
            bomb.display()
        );
        assert!(line.starts_with(&start), "{line}");
    }
    assert!(
        peak < PREDICT_PEAK_RSS,
        "index peaked at {} MB",
        peak / 1_000_000
    );
    assert!(index.is_file());
}

/// POST `body` to `/api/predict` of the server at `url` on a connection of its own; the
/// answer's status code and body.
fn upload(url: &str, body: &[u8]) -> (u16, String) {
    let address = url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /api/predict HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok());
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status.unwrap_or(0), body.to_string())
}

#[test]
fn serve_answers_eight_bomb_uploads_at_once_within_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let models = run_and_export(dir.path(), &db, "one", (6, 3), "learning_rate = [0.003]");
    let bombs: Vec<Vec<u8>> = bombs(dir.path())
        .iter()
        .map(|b| std::fs::read(b).unwrap())
        .collect();
    let args: Vec<String> = ["--models", models.to_str().unwrap()]
        .map(String::from)
        .to_vec();
    let server = Server::start(dir.path(), dir.path(), &dir.path().join("serve.err"), &args);
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let uploads: Vec<_> = (0..8)
            .map(|i| {
                let (url, bomb) = (&server.url, &bombs[i % bombs.len()]);
                scope.spawn(move || upload(url, bomb))
            })
            .collect();
        uploads.into_iter().map(|u| u.join().unwrap()).collect()
    });
    for (i, (status, body)) in answers.iter().enumerate() {
        // The GIF and PNG are refused as too big (413); the forged JPEG as unreadable (415).
        let expected = if i % bombs.len() == 1 { 415 } else { 413 };
        assert_eq!(*status, expected, "upload {i}: {body}");
        assert!(
            body.contains("not a readable image ("),
            "upload {i}: {body}"
        );
    }
    let peak = server.peak_rss();
    eprintln!(
        "serve peak RSS under 8 bomb uploads: {} MB",
        peak / 1_000_000
    );
    assert!(
        peak < SERVE_PEAK_RSS,
        "serve peaked at {} MB",
        peak / 1_000_000
    );
    let photo = std::fs::read(&shipped_photos("shoe")[0]).unwrap();
    let (status, body) = upload(&server.url, &photo);
    assert_eq!(status, 200, "a real photo after the bombs: {body}");
    assert!(server.stop().success());
}

#[test]
fn run_skips_each_bomb_in_one_line_trains_on_the_photos_and_stays_within_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    // 15 files per class, all of them used (10 to train, 5 to validate): boot's 3 are bombs.
    for (department, count) in [("boot", 12), ("shoe", 15)] {
        let folder = photos.join(department);
        std::fs::create_dir_all(&folder).unwrap();
        for photo in shipped_photos(department).into_iter().take(count) {
            std::fs::copy(&photo, folder.join(photo.file_name().unwrap())).unwrap();
        }
    }
    let bombs = bombs(&photos.join("boot"));
    let text = grid_text("bombs", (10, 5), "learning_rate = [1e-3]").replace(
        &repo().join("data/footwear").display().to_string(),
        &photos.display().to_string(),
    );
    let grid = write(&dir.path().join("bombs.toml"), &text);
    let db = dir.path().join("gs.db");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridsearch"));
    cmd.arg("--db").arg(&db).arg("run").arg(&grid);
    let (code, stderr, peak) = run_measured(cmd);
    eprintln!("run peak RSS: {} MB", peak / 1_000_000);
    assert_eq!(code, Some(0), "{stderr}");
    for bomb in &bombs {
        let name = bomb.file_name().unwrap().to_str().unwrap();
        assert_eq!(stderr.matches(name).count(), 1, "{name} once: {stderr}");
    }
    assert!(peak < RUN_PEAK_RSS, "run peaked at {} MB", peak / 1_000_000);
    assert_eq!(trial_rows(&db)[0].1, "complete");
}
