//! Test harness shared by the rts crates (dev-dependency only, not published).
//!
//! Tests that need a program we did not write (ffmpeg, ffprobe, GStreamer,
//! Chromium, md5sum, python3) or a fixture file (docs/testing.md) ask for it
//! here. When it is missing the test prints why and is skipped, unless
//! `RTS_REQUIRE_INTEROP=1` is set (as CI does), in which case it fails:
//!
//! ```no_run
//! let Some(ffprobe) = rts_testkit::tool("ffprobe") else { return };
//! let Some(flv) = rts_testkit::fixture("media/baseline_aaclc44k.flv") else { return };
//! # let _ = (ffprobe, flv);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that turns a missing real peer into a failure.
pub const REQUIRE_ENV: &str = "RTS_REQUIRE_INTEROP";

/// Whether missing real peers and fixtures fail the test (CI) instead of
/// skipping it (a fresh machine with only Rust and a C compiler).
pub fn interop_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Skips (returns `None` after printing `reason`) or, when interop is
/// required, panics with `reason`.
#[track_caller]
pub fn skip<T>(reason: &str) -> Option<T> {
    if interop_required() {
        panic!("{reason} ({REQUIRE_ENV}=1, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED: {reason} (set {REQUIRE_ENV}=1 to make this fail)");
    None
}

/// Finds `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A program we did not write, found on `PATH`, or a skip (see [`skip`]).
#[track_caller]
pub fn tool(name: &str) -> Option<PathBuf> {
    match find_on_path(name) {
        Some(path) => Some(path),
        None => skip(&format!(
            "`{name}` is not installed (CI installs it with .ci/install-deps)"
        )),
    }
}

/// A GStreamer element, checked with `gst-inspect-1.0`, or a skip.
#[track_caller]
pub fn gst_element(element: &str) -> Option<()> {
    let inspect = tool("gst-inspect-1.0")?;
    let ok = Command::new(inspect)
        .arg(element)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(())
    } else {
        skip(&format!("GStreamer element `{element}` is not installed"))
    }
}

/// The static FFmpeg (version 8 or later: `-f whip`, Enhanced RTMP) that the
/// PyPI package `imageio-ffmpeg` ships, or a skip.
#[track_caller]
pub fn modern_ffmpeg() -> Option<PathBuf> {
    let python = tool("python3")?;
    let out = Command::new(python)
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .output()
        .ok();
    match out {
        Some(o) if o.status.success() => {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            if p.is_file() {
                Some(p)
            } else {
                skip("imageio-ffmpeg names an FFmpeg that does not exist")
            }
        }
        _ => skip("the PyPI package imageio-ffmpeg (FFmpeg 8+) is not installed"),
    }
}

/// The workspace root (the folder with the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // invariant: this crate lives at <root>/crates/testkit.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("testkit is two levels below the workspace root")
        .to_path_buf()
}

/// The fixtures folder (docs/testing.md): `$RTS_FIXTURES`, else a
/// `shared/fixtures` folder beside the checkout when there is one, else
/// `target/rts-fixtures`, where [`fixture`] makes the media files with
/// ffmpeg (`tests/fixtures/make-media.sh`) the first time one is asked for.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RTS_FIXTURES") {
        return PathBuf::from(dir);
    }
    let shared = workspace_root().join("../shared/fixtures");
    if shared.is_dir() {
        return shared;
    }
    workspace_root().join("target/rts-fixtures")
}

/// Makes `dir/media` with tests/fixtures/make-media.sh when ffmpeg is
/// installed. Several test processes may race: each makes its own copy and
/// renames it into place; the first rename wins and the rest are dropped.
fn make_media(dir: &Path) {
    if dir.join("media").is_dir() || find_on_path("ffmpeg").is_none() {
        return;
    }
    let tmp = dir.join(format!("make-{}", std::process::id()));
    let script = workspace_root().join("tests/fixtures/make-media.sh");
    eprintln!("making the media fixtures in {} with ffmpeg", dir.display());
    let made = Command::new("bash")
        .arg(&script)
        .arg(&tmp)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let _ = std::fs::rename(tmp.join("media"), dir.join("media"));
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A file under the fixtures folder (for example
/// `media/baseline_aaclc44k.flv`), or a skip naming the missing path.
#[track_caller]
pub fn fixture(relative: &str) -> Option<PathBuf> {
    let dir = fixtures_dir();
    let path = dir.join(relative);
    if !path.is_file() && relative.starts_with("media/") {
        make_media(&dir);
    }
    if path.is_file() {
        Some(path)
    } else {
        skip(&format!(
            "fixture {} is missing (docs/testing.md: set RTS_FIXTURES, or install ffmpeg to make the media files)",
            path.display()
        ))
    }
}

/// The four media fixtures (FLV files), or a skip.
#[track_caller]
pub fn media_fixtures() -> Option<Vec<PathBuf>> {
    [
        "media/baseline_aaclc44k.flv",
        "media/baseline_aaclc48k_mono.flv",
        "media/main_bframes_nonref_aaclc48k.flv",
        "media/high_bpyramid_aaclc44k.flv",
    ]
    .into_iter()
    .map(fixture)
    .collect()
}

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests
/// that start a server right after).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A child process that is killed when dropped, so a failing test leaves no
/// ffmpeg or Chromium behind.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Spawns `cmd` with stdin closed. `what` names it in messages.
    pub fn spawn(cmd: &mut Command, what: &str) -> std::io::Result<Self> {
        let child = cmd.stdin(Stdio::null()).spawn()?;
        Ok(Self {
            child: Some(child),
            what: what.to_owned(),
        })
    }

    /// Spawns `cmd` with a piped stdin (take it with [`ChildGuard::child`])
    /// for a driver that waits for a line before it finishes.
    pub fn spawn_with_stdin(cmd: &mut Command, what: &str) -> std::io::Result<Self> {
        let child = cmd.stdin(Stdio::piped()).spawn()?;
        Ok(Self {
            child: Some(child),
            what: what.to_owned(),
        })
    }

    /// The running child (for its pipes); `None` once waited for.
    pub fn child(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Reads the child's piped stdout (on a thread) until a line matches
    /// `pred`, for at most `timeout`; returns that line. The rest of stdout
    /// keeps being drained so the child never blocks on a full pipe.
    pub fn wait_for_line(
        &mut self,
        pred: impl Fn(&str) -> bool + Send + 'static,
        timeout: Duration,
    ) -> Option<String> {
        let stdout = self.child.as_mut()?.stdout.take()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut sent = false;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && pred(&line) {
                    sent = true;
                    let _ = tx.send(line);
                }
            }
        });
        rx.recv_timeout(timeout).ok()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits up to `timeout` for the process to exit; kills it and returns
    /// an error naming it when the time runs out.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Output, String> {
        let mut child = self.child.take().ok_or("already waited")?;
        let deadline = Instant::now() + timeout;
        // Drain pipes on threads so a chatty child cannot block on a full pipe.
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        let status: ExitStatus = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr = err
                        .map(|h| h.join().unwrap_or_default())
                        .unwrap_or_default();
                    return Err(format!(
                        "{} did not exit within {timeout:?}; stderr tail:\n{}",
                        self.what,
                        tail(&stderr, 2000)
                    ));
                }
                // Polling a child's exit has no blocking-with-timeout API in std.
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for {}: {e}", self.what)),
            }
        };
        Ok(Output {
            status,
            stdout: out
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default(),
            stderr: err
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default(),
        })
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// The last `max` bytes of `bytes` as text, for error messages.
pub fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned()
}

/// Runs `cmd` to completion with a time limit, capturing its output.
pub fn run(cmd: &mut Command, what: &str, timeout: Duration) -> Result<Output, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    ChildGuard::spawn(cmd, what)
        .map_err(|e| format!("starting {what}: {e}"))?
        .wait_timeout(timeout)
}

/// Runs `cmd` and returns its stdout, failing with its stderr when it exits
/// non-zero.
pub fn run_ok(cmd: &mut Command, what: &str, timeout: Duration) -> Result<String, String> {
    let out = run(cmd, what, timeout)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}",
            out.status,
            tail(&out.stderr, 4000)
        ))
    }
}

/// Counts video and audio packets of a media file or URL with ffprobe
/// (`-count_packets`): `(video, audio)`.
pub fn ffprobe_packet_counts(ffprobe: &Path, input: &str) -> Result<(u64, u64), String> {
    let count = |stream: &str| -> Result<u64, String> {
        let out = run_ok(
            Command::new(ffprobe).args([
                "-v",
                "error",
                "-select_streams",
                stream,
                "-count_packets",
                "-show_entries",
                "stream=nb_read_packets",
                "-of",
                "csv=p=0",
                input,
            ]),
            "ffprobe",
            Duration::from_secs(60),
        )?;
        let line = out.lines().next().unwrap_or("0").trim();
        if line.is_empty() {
            return Ok(0);
        }
        line.parse()
            .map_err(|e| format!("ffprobe printed {line:?}: {e}"))
    };
    Ok((count("v:0")?, count("a:0")?))
}

/// An example program of the root package, built by `cargo test` next to the
/// test binaries (`target/{profile}/examples/{name}`).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // invariant: test executables live in target/{profile}/deps/.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is in target/{profile}/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "example `{name}` was not built at {} (run the tests with `cargo test --workspace`, which builds examples)",
        path.display()
    );
    path
}

// ---- Chromium drivers (tests/browser: playwright-core + Debian's Chromium) ----

/// `node` and the tests/browser folder, or a skip.
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    tool("chromium")?;
    let node = tool("node")?;
    let dir = workspace_root().join("tests/browser");
    if !dir.join("node_modules/playwright-core").is_dir() {
        return skip(
            "tests/browser/node_modules is missing: run `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci` in tests/browser",
        );
    }
    Some((node, dir))
}

/// Runs `node tests/browser/<script> args..` and parses its JSON output.
pub fn node_json(
    node: &Path,
    dir: &Path,
    script: &str,
    args: &[&str],
    timeout: Duration,
) -> serde_json::Value {
    let out = run(
        Command::new(node)
            .arg(dir.join(script))
            .args(args)
            .current_dir(dir),
        script,
        timeout,
    )
    .expect("driver ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{script} printed no JSON; stderr: {}",
                tail(&out.stderr, 3000)
            )
        });
    serde_json::from_str(line).expect("driver JSON")
}
