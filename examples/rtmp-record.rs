//! An RTMP server that records every publication to an FLV file and lets
//! players watch it live.
//!
//! ```text
//! cargo run --example rtmp-record -- --listen 127.0.0.1:1935 --out recordings
//! ffmpeg -re -i in.flv -c copy -f flv rtmp://127.0.0.1:1935/live/demo
//! ffplay rtmp://127.0.0.1:1935/live/demo        # while it is published
//! ```
//!
//! A publication of `rtmp://host/{app}/{stream}` is written to
//! `OUT/{app}/{stream}.flv.part` and renamed to `OUT/{app}/{stream}.flv`
//! when the publisher stops (with the first metadata of the publication;
//! later updates go to players only). One thread per connection; a connection that
//! fails is logged and closed, the others go on.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use rts::flv::{Header, Muxer, Tag, TagType};
use rts::rtmp::command::code;
use rts::rtmp::session::{Config, MediaKind, ServerEvent, ServerSession};

const USAGE: &str = "usage: rtmp-record --listen ADDR:PORT --out DIR";
/// Messages queued for one player before it counts as too slow and is
/// dropped.
const PLAYER_QUEUE: usize = 4096;
/// Most media messages kept since the last keyframe for late joiners.
const GOP_LIMIT: usize = 4096;

#[derive(Clone)]
enum Out {
    Media(MediaKind, u32, Bytes),
    Metadata(Bytes),
    End,
}

#[derive(Default)]
struct Live {
    metadata: Option<Bytes>,
    video_config: Option<Bytes>,
    audio_config: Option<Bytes>,
    gop: Vec<(MediaKind, u32, Bytes)>,
    players: Vec<SyncSender<Out>>,
}

impl Live {
    fn broadcast(&mut self, item: &Out) {
        self.players.retain(|p| {
            !matches!(
                p.try_send(item.clone()),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
            )
        });
    }
}

type Hub = Arc<Mutex<HashMap<String, Live>>>;

fn lock(hub: &Hub) -> MutexGuard<'_, HashMap<String, Live>> {
    // A panicking connection thread must not take the others down.
    hub.lock().unwrap_or_else(|e| e.into_inner())
}

fn main() -> anyhow::Result<()> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let (mut listen, mut out) = (None, None);
    while let Some(arg) = p.next()? {
        match arg {
            Long("listen") => listen = Some(p.value()?.string()?),
            Long("out") => out = Some(PathBuf::from(p.value()?)),
            Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => bail!("{}\n{USAGE}", arg.unexpected()),
        }
    }
    let listen = listen.unwrap_or_else(|| "127.0.0.1:1935".to_owned());
    let out = out.context(USAGE)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let listener = TcpListener::bind(&listen).with_context(|| format!("listening on {listen}"))?;
    eprintln!(
        "rtmp-record: listening on {listen}, writing to {}",
        out.display()
    );
    let hub: Hub = Arc::default();
    for (n, conn) in listener.incoming().enumerate() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rtmp-record: accept: {e}");
                continue;
            }
        };
        let (hub, out) = (hub.clone(), out.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{n}"))
            .spawn(move || {
                let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                match Connection::new(hub, out).run(conn) {
                    Ok(()) => eprintln!("rtmp-record: {peer}: closed"),
                    Err(e) => eprintln!("rtmp-record: {peer}: {e:#}"),
                }
            });
        if let Err(e) = spawned {
            eprintln!("rtmp-record: spawning a thread: {e}");
        }
    }
    Ok(())
}

fn random() -> [u8; 1528] {
    let state = RandomState::new();
    let mut r = [0u8; 1528];
    for (i, chunk) in r.chunks_mut(8).enumerate() {
        let v = state.hash_one(i).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    r
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

struct Recording {
    key: String,
    stream_id: u32,
    part: PathBuf,
    done: PathBuf,
    file: BufWriter<File>,
    muxer: Muxer,
    scratch: BytesMut,
    last_metadata: Option<Bytes>,
}

impl Recording {
    fn write(&mut self, tag: &Tag) -> anyhow::Result<()> {
        self.scratch.clear();
        self.muxer.encode(tag, &mut self.scratch)?;
        self.file.write_all(&self.scratch)?;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<PathBuf> {
        self.file.flush()?;
        drop(self.file);
        std::fs::rename(&self.part, &self.done)?;
        Ok(self.done)
    }
}

struct Connection {
    hub: Hub,
    out: PathBuf,
    session: ServerSession,
    recording: Option<Recording>,
    playing: Option<(u32, String, Receiver<Out>)>,
}

impl Connection {
    fn new(hub: Hub, out: PathBuf) -> Self {
        Self {
            hub,
            out,
            session: ServerSession::new(Config::default(), &random()),
            recording: None,
            playing: None,
        }
    }

    fn run(mut self, mut conn: TcpStream) -> anyhow::Result<()> {
        let result = self.pump(&mut conn);
        self.stop_publishing();
        if let Some((_, key, rx)) = self.playing.take() {
            drop(rx);
            if let Some(live) = lock(&self.hub).get_mut(&key) {
                live.players.retain(|p| {
                    !matches!(p.try_send(Out::End), Err(TrySendError::Disconnected(_)))
                });
            }
        }
        result
    }

    fn pump(&mut self, conn: &mut TcpStream) -> anyhow::Result<()> {
        conn.set_nodelay(true)?;
        conn.set_read_timeout(Some(Duration::from_millis(20)))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => self
                    .session
                    .handle_input(Instant::now(), buf.get(..n).unwrap_or_default()),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e.into()),
            }
            self.session.handle_timeout(Instant::now());
            while let Some(ev) = self.session.poll_event() {
                self.on_event(ev)?;
            }
            self.forward_to_player();
            while let Some(bytes) = self.session.poll_transmit() {
                conn.write_all(&bytes)?;
            }
            if self.session.is_closed() {
                return Ok(());
            }
        }
    }

    fn forward_to_player(&mut self) {
        let Some((sid, _, rx)) = &self.playing else {
            return;
        };
        let sid = *sid;
        let items: Vec<Out> = rx.try_iter().collect();
        for item in items {
            match item {
                Out::Media(kind, ts, payload) => {
                    self.session.send_media(sid, kind, ts, payload);
                }
                Out::Metadata(m) => {
                    self.session.send_metadata(sid, m);
                }
                Out::End => {
                    self.session.send_unpublish_notify(sid);
                }
            }
        }
    }

    fn on_event(&mut self, ev: ServerEvent) -> anyhow::Result<()> {
        match ev {
            ServerEvent::ConnectRequested { app, .. } => {
                if valid_name(&app) {
                    self.session.accept_connect()?;
                } else {
                    self.session.reject_connect(&format!(
                        "invalid app {app:?}: use letters, digits, '_', '-' or '.'"
                    ))?;
                }
            }
            ServerEvent::PublishRequested {
                stream_id,
                app,
                stream,
                ..
            } => {
                let key = format!("{app}/{stream}");
                if !valid_name(&stream) || self.recording.is_some() {
                    self.session.reject_publish(
                        stream_id,
                        code::PUBLISH_BAD_NAME,
                        "invalid stream name: use letters, digits, '_', '-' or '.'",
                    )?;
                    return Ok(());
                }
                {
                    let mut hub = lock(&self.hub);
                    if hub.contains_key(&key) {
                        drop(hub);
                        self.session.reject_publish(
                            stream_id,
                            code::PUBLISH_BAD_NAME,
                            &format!("{key} is already being published"),
                        )?;
                        return Ok(());
                    }
                    hub.insert(key.clone(), Live::default());
                }
                let dir = self.out.join(&app);
                std::fs::create_dir_all(&dir)?;
                let done = dir.join(format!("{stream}.flv"));
                let part = dir.join(format!("{stream}.flv.part"));
                let file = BufWriter::new(File::create(&part)?);
                self.recording = Some(Recording {
                    key,
                    stream_id,
                    part,
                    done,
                    file,
                    muxer: Muxer::new(Header::new(true, true)),
                    scratch: BytesMut::new(),
                    last_metadata: None,
                });
                self.session.accept_publish(stream_id)?;
                eprintln!("rtmp-record: publishing {app}/{stream}");
            }
            ServerEvent::Metadata {
                payload,
                stream_id,
                timestamp,
                ..
            } => {
                if let Some(rec) = self.recording.as_mut().filter(|r| r.stream_id == stream_id) {
                    // Only the first metadata goes to the file: GStreamer
                    // repeats it ~30 times, and ffmpeg reads a script tag
                    // after time 0 as an extra data stream. Players get
                    // every update.
                    if rec.last_metadata.is_none() {
                        rec.write(&Tag::new(TagType::Script, timestamp, payload.clone()))?;
                    }
                    rec.last_metadata = Some(payload.clone());
                    if let Some(live) = lock(&self.hub).get_mut(&rec.key) {
                        live.metadata = Some(payload.clone());
                        live.broadcast(&Out::Metadata(payload));
                    }
                }
            }
            ServerEvent::Media {
                stream_id,
                kind,
                timestamp,
                payload,
            } => {
                if let Some(rec) = self.recording.as_mut().filter(|r| r.stream_id == stream_id) {
                    let tag_type = match kind {
                        MediaKind::Audio => TagType::Audio,
                        MediaKind::Video => TagType::Video,
                    };
                    rec.write(&Tag::new(tag_type, timestamp, payload.clone()))?;
                    if let Some(live) = lock(&self.hub).get_mut(&rec.key) {
                        remember(live, kind, timestamp, &payload);
                        live.broadcast(&Out::Media(kind, timestamp, payload));
                    }
                }
            }
            ServerEvent::Unpublished { stream_id, .. }
                if self
                    .recording
                    .as_ref()
                    .is_some_and(|r| r.stream_id == stream_id) =>
            {
                self.stop_publishing();
            }
            ServerEvent::PlayRequested {
                stream_id,
                app,
                stream,
                ..
            } => {
                let key = format!("{app}/{stream}");
                let mut hub = lock(&self.hub);
                let Some(live) = hub.get_mut(&key) else {
                    drop(hub);
                    self.session.reject_play(
                        stream_id,
                        &format!("{key} is not being published now; start the publisher first"),
                    )?;
                    return Ok(());
                };
                let (tx, rx) = sync_channel(PLAYER_QUEUE);
                let mut start = Vec::new();
                if let Some(m) = &live.metadata {
                    start.push(Out::Metadata(m.clone()));
                }
                let ts0 = live.gop.first().map_or(0, |g| g.1);
                if let Some(v) = &live.video_config {
                    start.push(Out::Media(MediaKind::Video, ts0, v.clone()));
                }
                if let Some(a) = &live.audio_config {
                    start.push(Out::Media(MediaKind::Audio, ts0, a.clone()));
                }
                start.extend(
                    live.gop
                        .iter()
                        .map(|(k, t, p)| Out::Media(*k, *t, p.clone())),
                );
                for item in start {
                    // The queue is new and larger than the GOP limit.
                    let _ = tx.try_send(item);
                }
                live.players.push(tx);
                drop(hub);
                self.session.accept_play(stream_id)?;
                self.playing = Some((stream_id, key, rx));
            }
            ServerEvent::PlayStopped { .. } => {
                self.playing = None;
            }
            ServerEvent::Error(e) => bail!("session error: {e}"),
            ServerEvent::Closed => {}
            _ => {}
        }
        Ok(())
    }

    fn stop_publishing(&mut self) {
        let Some(rec) = self.recording.take() else {
            return;
        };
        if let Some(mut live) = lock(&self.hub).remove(&rec.key) {
            live.broadcast(&Out::End);
        }
        match rec.finish() {
            Ok(path) => eprintln!("rtmp-record: recorded {}", path.display()),
            Err(e) => eprintln!("rtmp-record: finishing a recording: {e:#}"),
        }
    }
}

/// Keeps codec configs and the media since the last video keyframe so a
/// player that joins late can start decoding at once.
fn remember(live: &mut Live, kind: MediaKind, timestamp: u32, payload: &Bytes) {
    let b0 = payload.first().copied().unwrap_or(0);
    let b1 = payload.get(1).copied().unwrap_or(0xff);
    match kind {
        MediaKind::Video => {
            let enhanced = b0 & 0x80 != 0;
            let is_config = if enhanced { b0 & 0x0f == 0 } else { b1 == 0 };
            if is_config {
                live.video_config = Some(payload.clone());
                return;
            }
            if (b0 >> 4) & 0x07 == 1 {
                live.gop.clear();
            }
        }
        MediaKind::Audio => {
            if b0 >> 4 == 10 && b1 == 0 {
                live.audio_config = Some(payload.clone());
                return;
            }
        }
    }
    if live.gop.len() >= GOP_LIMIT {
        live.gop.clear();
    }
    live.gop.push((kind, timestamp, payload.clone()));
}
