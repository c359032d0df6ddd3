//! Prints the signed ingest and play URLs of a stream, like a console's
//! "Generate URLs" button.
//!
//! ```text
//! cargo run --example sign-url -- --ingest-domain push.example.com \
//!     --streaming-domain pull.example.com --app live --stream demo \
//!     --ingest-key INGEST_KEY --play-key PLAY_KEY \
//!     [--timestamp UNIX] [--validity MINUTES] [--template ID] [--rand R]
//! ```
//!
//! One line per URL on stdout (`name: url`); the expiry goes to stderr.
//! Errors are one line on stderr and exit code 2.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use rts::auth::urls::{Signing, Site, generate};

const USAGE: &str = "usage: sign-url --ingest-domain D --streaming-domain D --app A --stream S --ingest-key K --play-key K \
[--timestamp UNIX] [--validity MINUTES] [--template ID] [--rand R] [--uid U] [--http-port P] [--rtmp-port P] [--https]";

struct Args {
    site: Site,
    app: String,
    stream: String,
    ingest: Signing,
    play: Signing,
    validity_minutes: u64,
    template: Option<String>,
}

fn parse() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let (mut ingest, mut streaming, mut app, mut stream) = (None, None, None, None);
    let (mut ingest_key, mut play_key) = (None, None);
    let (mut timestamp, mut validity, mut template, mut rand, mut uid) =
        (None, 1440u64, None, None, None);
    let (mut http_port, mut rtmp_port, mut https) = (8080u16, 1935u16, false);
    let text = |p: &mut lexopt::Parser, name: &str| -> Result<String, String> {
        p.value()
            .map_err(|e| format!("{name}: {e}"))?
            .into_string()
            .map_err(|_| format!("{name} is not valid UTF-8"))
    };
    let num = |p: &mut lexopt::Parser, name: &str| -> Result<u64, String> {
        let v = text(p, name)?;
        v.parse()
            .map_err(|_| format!("{name} must be a whole number, got {v:?}"))
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("ingest-domain") => ingest = Some(text(&mut p, "--ingest-domain")?),
            Long("streaming-domain") => streaming = Some(text(&mut p, "--streaming-domain")?),
            Long("app") => app = Some(text(&mut p, "--app")?),
            Long("stream") => stream = Some(text(&mut p, "--stream")?),
            Long("ingest-key") => ingest_key = Some(text(&mut p, "--ingest-key")?),
            Long("play-key") => play_key = Some(text(&mut p, "--play-key")?),
            Long("timestamp") => timestamp = Some(num(&mut p, "--timestamp")?),
            Long("validity") => validity = num(&mut p, "--validity")?,
            Long("template") => template = Some(text(&mut p, "--template")?),
            Long("rand") => rand = Some(text(&mut p, "--rand")?),
            Long("uid") => uid = Some(text(&mut p, "--uid")?),
            Long("http-port") => {
                http_port = u16::try_from(num(&mut p, "--http-port")?)
                    .map_err(|_| "--http-port must be 1-65535")?
            }
            Long("rtmp-port") => {
                rtmp_port = u16::try_from(num(&mut p, "--rtmp-port")?)
                    .map_err(|_| "--rtmp-port must be 1-65535")?
            }
            Long("https") => https = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("{}; {USAGE}", other.unexpected())),
        }
    }
    let need = |v: Option<String>, name: &str| v.ok_or_else(|| format!("missing {name}; {USAGE}"));
    let mut site = Site::new(
        need(ingest, "--ingest-domain")?,
        need(streaming, "--streaming-domain")?,
    );
    site.http_port = http_port;
    site.rtmp_port = rtmp_port;
    site.https = https;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signing = |key: String| {
        let mut s = Signing::new(key, timestamp.unwrap_or(now));
        if let Some(r) = &rand {
            s.rand.clone_from(r);
        }
        if let Some(u) = &uid {
            s.uid.clone_from(u);
        }
        s
    };
    let ingest = signing(need(ingest_key, "--ingest-key")?);
    let play = signing(need(play_key, "--play-key")?);
    Ok(Args {
        site,
        app: need(app, "--app")?,
        stream: need(stream, "--stream")?,
        ingest,
        play,
        validity_minutes: validity,
        template,
    })
}

fn main() -> ExitCode {
    let result = parse().and_then(|a| {
        let set = generate(
            &a.site,
            &a.app,
            &a.stream,
            a.template.as_deref(),
            &a.ingest,
            &a.play,
        )
        .map_err(|e| e.to_string())?;
        for (name, url) in set.named() {
            println!("{name}: {url}");
        }
        let expires = a
            .play
            .timestamp
            .saturating_add(a.validity_minutes.saturating_mul(60));
        eprintln!(
            "valid until unix time {expires} ({} minutes from the timestamp)",
            a.validity_minutes
        );
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sign-url: {e}");
            ExitCode::from(2)
        }
    }
}
