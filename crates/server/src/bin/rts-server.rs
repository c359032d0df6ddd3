//! The rts streaming server (`rts-server --help` lists the flags).
//!
//! ```text
//! cargo install --path crates/server    # or, from a checkout: cargo run --release
//! rts-server [--config FILE] [--print-default-config] [--rtmp-listen ADDR]
//!     [--http-listen ADDR] [--rtc-listen ADDR] [--auth-key KEY]
//!     [--ingest-key KEY] [--no-auth]
//! ```
//!
//! Without flags it runs on the embedded defaults (RTMP 1935, HTTP 8080,
//! signing on with a random key) and prints ready-to-use URLs for
//! `live/demo`. Logs go to stderr (`RUST_LOG=debug` for more); SIGTERM or
//! Ctrl-C stops it gracefully (exit status 0).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use rts_auth::urls::{Protocol, Signing, Site, generate};
use rts_server::Server;
use rts_server::config::{Config, DomainKind};

const USAGE: &str = "usage: rts-server [--config FILE] [--print-default-config] [--rtmp-listen ADDR] \
[--http-listen ADDR] [--rtc-listen ADDR] [--auth-key KEY] [--ingest-key KEY] [--no-auth] [--help] [--version]";

const HELP: &str = "\
rts-server: RTMP/WHIP in; WebRTC (WHEP), RTMP and HTTP-FLV out, with signed URLs.

Without flags it runs on the embedded defaults (RTMP tcp 0.0.0.0:1935, HTTP
tcp 0.0.0.0:8080, WebRTC udp 0.0.0.0:8000, signing on with random keys) and
prints ready-to-use URLs for live/demo.

Options:
  --config FILE           read the configuration from a TOML file (see
                          --print-default-config; flags below override it)
  --print-default-config  print the embedded default configuration and exit
  --rtmp-listen ADDR      RTMP listen address, e.g. 0.0.0.0:1935
  --http-listen ADDR      HTTP(S) listen address (WHEP, HTTP-FLV, API,
                          player), e.g. 0.0.0.0:8080
  --rtc-listen ADDR       WebRTC UDP address (one socket for every peer),
                          e.g. 0.0.0.0:8000
  --auth-key KEY          the signing key of play URLs (the default
                          streaming domain); random and printed when absent
  --ingest-key KEY        the signing key of publish URLs (the default ingest
                          domain); random and printed when absent. It must
                          differ from --auth-key: a play URL never publishes
  --no-auth               turn URL signing off on every domain (tests only)
  -h, --help              print this help and exit
  -V, --version           print the version and exit

Environment:
  RUST_LOG                log filter (default info), e.g. RUST_LOG=debug

Logs go to stderr. SIGTERM or SIGINT (Ctrl-C) stops the server gracefully:
publishers and viewers are told, connections close, exit status 0 (within
[limits] shutdown_ms, default 5 s).
Docs: docs/quickstart.md, docs/configuration.md in the source repository.";

/// What the command line asks for.
enum Command {
    Run(Args),
    Help,
    Version,
}

struct Args {
    config: Option<String>,
    print_default: bool,
    rtmp: Option<SocketAddr>,
    http: Option<SocketAddr>,
    rtc: Option<SocketAddr>,
    auth_key: Option<String>,
    ingest_key: Option<String>,
    no_auth: bool,
}

fn parse_args() -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let mut a = Args {
        config: None,
        print_default: false,
        rtmp: None,
        http: None,
        rtc: None,
        auth_key: None,
        ingest_key: None,
        no_auth: false,
    };
    let text = |p: &mut lexopt::Parser, name: &str| -> Result<String, String> {
        p.value()
            .map_err(|e| format!("{name}: {e}"))?
            .into_string()
            .map_err(|_| format!("{name} is not valid UTF-8"))
    };
    let addr = |p: &mut lexopt::Parser, name: &str| -> Result<SocketAddr, String> {
        let v = text(p, name)?;
        v.parse()
            .map_err(|_| format!("{name} must be an address like 0.0.0.0:1935, got {v:?}"))
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("config") => a.config = Some(text(&mut p, "--config")?),
            Long("print-default-config") => a.print_default = true,
            Long("rtmp-listen") => a.rtmp = Some(addr(&mut p, "--rtmp-listen")?),
            Long("http-listen") => a.http = Some(addr(&mut p, "--http-listen")?),
            Long("rtc-listen") => a.rtc = Some(addr(&mut p, "--rtc-listen")?),
            Long("auth-key") => a.auth_key = Some(text(&mut p, "--auth-key")?),
            Long("ingest-key") => a.ingest_key = Some(text(&mut p, "--ingest-key")?),
            Long("no-auth") => a.no_auth = true,
            Long("help") | Short('h') => return Ok(Command::Help),
            Long("version") | Short('V') => return Ok(Command::Version),
            other => return Err(format!("{}\n{USAGE}", other.unexpected())),
        }
    }
    Ok(Command::Run(a))
}

fn config(a: &Args) -> Result<Config, String> {
    let mut c = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            Config::parse(&text).map_err(|e| format!("{path}: {e}"))?
        }
        None => Config::default(),
    };
    if let Some(x) = a.rtmp {
        c.listen.rtmp = x;
    }
    if let Some(x) = a.http {
        c.listen.http = x;
    }
    if let Some(x) = a.rtc {
        c.listen.rtc = x;
    }
    for (flag, key, kind) in [
        ("--auth-key", &a.auth_key, DomainKind::Streaming),
        ("--ingest-key", &a.ingest_key, DomainKind::Ingest),
    ] {
        if let Some(k) = key {
            if k.is_empty() {
                return Err(format!("{flag} must not be empty"));
            }
            c.set_default_key(kind, k);
        }
    }
    if a.auth_key.is_some() && a.auth_key == a.ingest_key {
        return Err(
            "--auth-key (play URLs) and --ingest-key (publish URLs) must differ: with one key, any play URL could publish"
                .into(),
        );
    }
    if a.no_auth {
        c.disable_signing();
    }
    c.finish().map_err(|e| e.to_string())?;
    Ok(c)
}

/// A host to print in URLs for a listen address.
fn host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        "127.0.0.1".into()
    } else {
        addr.ip().to_string()
    }
}

fn print_urls(server: &Server) -> Result<(), String> {
    let c = server.config();
    let (Some(ingest), Some(play)) = (
        c.default_domain(DomainKind::Ingest),
        c.default_domain(DomainKind::Streaming),
    ) else {
        return Ok(());
    };
    let rtmp = server.rtmp_addr();
    let http = server.http_addr();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut site = Site::new(host(rtmp), host(http));
    site.rtmp_port = rtmp.port();
    site.http_port = http.port();
    site.https = server.https();
    let key = |d: &rts_server::config::Domain| d.primary_key.clone().unwrap_or_default();
    // An unsigned domain's URLs are printed without their auth_key: any
    // stand-in key (distinct from the other) makes them.
    let stand_in = |d: &rts_server::config::Domain, name: &str| {
        if d.signing {
            key(d)
        } else {
            format!("unsigned-{name}")
        }
    };
    let (ingest_key, play_key) = (stand_in(ingest, "ingest"), stand_in(play, "play"));
    let urls = generate(
        &site,
        "live",
        "demo",
        None,
        &Signing::new(ingest_key, now),
        &Signing::new(play_key, now),
    )
    .map_err(|e| e.to_string())?;
    let strip = |signing: bool, url: &str| -> String {
        if signing {
            url.to_owned()
        } else {
            url.split('?').next().unwrap_or(url).to_owned()
        }
    };
    let ingest_url = strip(ingest.signing, &urls.ingest);
    let p = &urls.play;
    let player_query = p.artc.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scheme = if server.https() { "https" } else { "http" };
    let player = format!("{scheme}://{}:{}/play/live/demo", host(http), http.port());
    let player = if play.signing {
        format!("{player}?{player_query}")
    } else {
        player
    };
    println!(
        "rts-server: RTMP on {rtmp}, HTTP on {http}, WebRTC on udp {}",
        server.rtc_addr()
    );
    println!(
        "domains: ingest {} / streaming {} (signing {}; URLs valid {} min)",
        ingest.name,
        play.name,
        if ingest.signing { "on" } else { "off" },
        play.validity_minutes
    );
    if ingest.signing {
        println!("ingest key (publish URLs): {}", key(ingest));
    }
    if play.signing {
        println!("play key (play URLs):      {}", key(play));
    }
    println!("API token: {}", c.api.token.as_deref().unwrap_or(""));
    println!();
    println!("publish live/demo:  {ingest_url}");
    println!(
        "  ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 \\\n    -c:v libx264 -preset veryfast -tune zerolatency -g 60 -c:a aac -f flv \"{ingest_url}\""
    );
    println!("play live/demo:");
    println!("  rtmp:   {}", strip(play.signing, &p.rtmp));
    println!("  flv:    {}", strip(play.signing, &p.flv));
    println!("  artc:   {}", strip(play.signing, &p.artc));
    let whep = format!("{scheme}://{}:{}/live/demo/whep", host(http), http.port());
    if play.signing {
        println!("  whep:   {whep}?{player_query}   (POST an SDP offer)");
    } else {
        println!("  whep:   {whep}   (POST an SDP offer)");
    }
    println!("  player: {player}");
    println!("  e.g.    ffplay \"{}\"", strip(play.signing, &p.flv));
    println!(
        "  (each URL is signed over its own uri: {} / {})",
        Protocol::Rtmp.uri("live", "demo"),
        Protocol::Flv.uri("live", "demo")
    );
    Ok(())
}

/// SIGTERM (systemd, `docker stop`) or SIGINT (Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM ({e}); only Ctrl-C stops the server cleanly");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(Command::Run(a)) => a,
        Ok(Command::Help) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("rts-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rts-server: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_default {
        print!("{}", Config::default_toml());
        return ExitCode::SUCCESS;
    }
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rts-server: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rts-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let server = Server::bind(config).await.map_err(|e| e.to_string())?;
        print_urls(&server)?;
        server.run(stop_signal()).await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rts-server: {e}");
            ExitCode::FAILURE
        }
    }
}
