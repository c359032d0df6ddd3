//! The `sign-url` example, checked with MD5 implementations we did not write
//! (coreutils `md5sum` and Python's `hashlib`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use rts::auth::{Keys, auth_key_from_query, verify};

const INGEST_KEY: &str = "s3cr3t-Ingest";
const PLAY_KEY: &str = "s3cr3t-Play";

/// The key a printed URL is signed with.
fn key_of(name: &str) -> &'static str {
    if name == "ingest" {
        INGEST_KEY
    } else {
        PLAY_KEY
    }
}

fn sign_url(args: &[&str]) -> std::process::Output {
    Command::new(rts_testkit::example_bin("sign-url"))
        .args(args)
        .output()
        .expect("run sign-url")
}

/// `(name, uri, auth_key)` of every line the example prints.
fn printed(stdout: &[u8]) -> Vec<(String, String, String)> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|line| {
            let (name, url) = line.split_once(": ").expect("name: url");
            let after_scheme = &url[url.find("://").unwrap() + 3..];
            let (path, query) = after_scheme[after_scheme.find('/').unwrap()..]
                .split_once('?')
                .unwrap();
            let key = auth_key_from_query(query).unwrap().unwrap().into_owned();
            (name.to_owned(), path.to_owned(), key)
        })
        .collect()
}

fn standard_args() -> Vec<&'static str> {
    vec![
        "--ingest-domain",
        "push.example.com",
        "--streaming-domain",
        "pull.example.com",
        "--app",
        "live",
        "--stream",
        "demo",
        "--ingest-key",
        INGEST_KEY,
        "--play-key",
        PLAY_KEY,
        "--timestamp",
        "1700000000",
        "--template",
        "lhd",
        "--rand",
        "a1b2c3",
    ]
}

#[test]
fn prints_every_url_signed_over_its_own_uri() {
    let out = sign_url(&standard_args());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let urls = printed(&out.stdout);
    let names: Vec<&str> = urls.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ingest", "artc", "rtmp", "flv", "hls", "artc_lhd", "rtmp_lhd", "flv_lhd", "hls_lhd"
        ]
    );
    let uris: Vec<&str> = urls.iter().map(|(_, u, _)| u.as_str()).collect();
    assert_eq!(
        uris,
        [
            "/live/demo",
            "/live/demo",
            "/live/demo",
            "/live/demo.flv",
            "/live/demo.m3u8",
            "/live/demo_lhd",
            "/live/demo_lhd",
            "/live/demo_lhd.flv",
            "/live/demo_lhd.m3u8"
        ]
    );
    for (name, uri, key) in &urls {
        assert!(key.starts_with("1700000000-a1b2c3-0-"), "{name}: {key}");
        verify(
            uri,
            key,
            &Keys::new(key_of(name)),
            Duration::from_secs(60),
            1_700_000_060,
        )
        .unwrap();
    }
    // The RTMP play URL is not a publish URL.
    let (_, uri, key) = urls.iter().find(|(n, _, _)| n == "rtmp").unwrap();
    assert!(
        verify(
            uri,
            key,
            &Keys::new(INGEST_KEY),
            Duration::from_secs(60),
            1_700_000_060
        )
        .is_err()
    );
}

fn independent_md5(tool: &str, args: &[&str], input: &str) -> String {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{tool} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn check_with(tool: &str, args: &[&str]) {
    let out = sign_url(&standard_args());
    assert!(out.status.success());
    for (name, uri, key) in printed(&out.stdout) {
        let (signed_part, hash) = key.rsplit_once('-').unwrap();
        let text = format!("{uri}-{signed_part}-{}", key_of(&name));
        assert_eq!(
            independent_md5(tool, args, &text),
            hash,
            "{name}: {tool} disagrees on {text:?}"
        );
    }
    // And the public vector from the documentation.
    let text = "/video/standard/1K.html-1444435200-0-0-aliyuncdnexp1234";
    assert_eq!(
        independent_md5(tool, args, text),
        "80cd3862d699b7118eed99103f2a3a4f"
    );
}

#[test]
fn hashes_match_coreutils_md5sum() {
    let Some(md5sum) = rts_testkit::tool("md5sum") else {
        return;
    };
    check_with(md5sum.to_str().unwrap(), &[]);
}

#[test]
fn hashes_match_python_hashlib() {
    let Some(python) = rts_testkit::tool("python3") else {
        return;
    };
    let script = "import hashlib,sys; print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())";
    check_with(python.to_str().unwrap(), &["-c", script]);
}

#[test]
fn errors_are_one_line_and_exit_2() {
    let mut missing_key = standard_args();
    let at = missing_key
        .iter()
        .position(|a| *a == "--ingest-key")
        .unwrap();
    missing_key.drain(at..at + 2);
    let mut same_key = standard_args();
    let at = same_key.iter().position(|a| *a == PLAY_KEY).unwrap();
    same_key[at] = INGEST_KEY;
    let mut bad_template = standard_args();
    let at = bad_template.iter().position(|a| *a == "lhd").unwrap();
    bad_template[at] = "l_hd";
    let mut bad_rand = standard_args();
    let at = bad_rand.iter().position(|a| *a == "a1b2c3").unwrap();
    bad_rand[at] = "a-b";
    for (args, needle) in [
        (missing_key, "missing --ingest-key"),
        (same_key, "the ingest and play keys are the same"),
        (bad_template, "invalid template id"),
        (bad_rand, "rand must"),
    ] {
        let out = sign_url(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}
