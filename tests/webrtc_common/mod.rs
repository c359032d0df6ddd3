//! Shared by the WebRTC interop tests: start an example server (the
//! Chromium drivers are in rts-testkit).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An example server; killed on drop.
pub(crate) struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub(crate) http: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `examples/<name>` on free ports and waits for its
    /// `listening` line.
    pub(crate) fn start(name: &str) -> Server {
        let http = format!("127.0.0.1:{}", rts_testkit::free_tcp_port());
        let udp = format!("127.0.0.1:{}", rts_testkit::free_udp_port());
        let mut child = Command::new(rts_testkit::example_bin(name))
            .args(["--listen", &http, "--udp", &udp])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server { child, lines, http };
        server
            .wait_line(|l| l.starts_with("listening"), Duration::from_secs(30))
            .expect("the example prints `listening`");
        server
    }

    /// Waits for a stdout line matching `pred`.
    pub(crate) fn wait_line(
        &mut self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}
