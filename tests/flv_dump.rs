//! The `flv-dump` example against ffprobe: the same packets, timestamps,
//! composition times and sizes; a clear error and exit code 1 on bad files.

use std::process::Command;
use std::time::Duration;

use rts_testkit::{example_bin, ffprobe_packet_counts, media_fixtures, run_ok, tool};

fn dump(path: &std::path::Path) -> std::process::Output {
    Command::new(example_bin("flv-dump"))
        .arg(path)
        .output()
        .expect("run flv-dump")
}

#[test]
fn flv_dump_agrees_with_ffprobe() {
    let Some(files) = media_fixtures() else {
        return;
    };
    let Some(ffprobe) = tool("ffprobe") else {
        return;
    };
    for file in files {
        let out = dump(&file);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        // "{dts} video {codec} {frame} codedframes ct={ct} size={size}"
        let mut video = Vec::new();
        let mut audio = 0u64;
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 7, "{line}");
            if f[4] != "codedframes" {
                continue;
            }
            let dts: i64 = f[0].parse().unwrap();
            let ct: i64 = f[5].strip_prefix("ct=").unwrap().parse().unwrap();
            let size: u64 = f[6].strip_prefix("size=").unwrap().parse().unwrap();
            match f[1] {
                "video" => {
                    assert_eq!(f[2], "avc", "{line}");
                    video.push(format!("{},{},{},{}", dts + ct, dts, size, f[3] == "key"));
                }
                "audio" => {
                    assert_eq!(f[2], "aac", "{line}");
                    audio += 1;
                }
                other => panic!("unexpected tag type {other}"),
            }
        }
        let probe = run_ok(
            Command::new(&ffprobe)
                .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
                .args(["packet=pts,dts,size,flags", "-of", "csv=p=0"])
                .arg(&file),
            "ffprobe",
            Duration::from_secs(60),
        )
        .unwrap();
        let expected: Vec<String> = probe
            .lines()
            .map(|l| {
                let (rest, flags) = l.rsplit_once(',').unwrap();
                format!("{rest},{}", flags.starts_with('K'))
            })
            .collect();
        assert_eq!(video, expected, "{}", file.display());
        let counts = ffprobe_packet_counts(&ffprobe, file.to_str().unwrap()).unwrap();
        assert_eq!((video.len() as u64, audio), counts);
    }
}

#[test]
fn flv_dump_rejects_bad_files_cleanly() {
    let Some(files) = media_fixtures() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("rts-flv-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read(&files[0]).unwrap();
    let cases = [
        (
            "truncated.flv",
            good[..good.len() / 2].to_vec(),
            "file ends inside a tag",
        ),
        (
            "notflv.flv",
            b"<html>not a video</html>".to_vec(),
            "bad signature",
        ),
        ("short.flv", b"FL".to_vec(), "shorter than the header"),
        (
            // A video tag whose body is an AVC header cut short.
            "badbody.flv",
            [
                &good[..13],
                &[9, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x17, 0x01, 0, 0, 0, 13],
            ]
            .concat(),
            "unexpected end of input while reading video tag header",
        ),
    ];
    for (name, bytes, message) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = dump(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
