//! The server side of an RTMP connection.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rts_flv::amf0::Value;

use super::{Config, Core, MediaKind, csid, metadata_body, split_aggregate};
use crate::Error;
use crate::chunk::Message;
use crate::command::{self, Command, Data, Level, code};
use crate::handshake;
use crate::message::{Control, LimitType, UserControl, types};

/// What a [`ServerSession`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The client sent `connect`: answer with
    /// [`ServerSession::accept_connect`] or [`ServerSession::reject_connect`].
    ConnectRequested {
        /// The application (`live` in `rtmp://host/live/stream`), query
        /// string removed.
        app: String,
        /// A query string that came with the app (`live?vhost=x`).
        query: String,
        /// The `tcUrl`, when sent.
        tc_url: Option<String>,
        /// The whole command object.
        object: Value,
    },
    /// The client wants to publish: [`ServerSession::accept_publish`] or
    /// [`ServerSession::reject_publish`].
    PublishRequested {
        /// Message stream id.
        stream_id: u32,
        /// The connection's app.
        app: String,
        /// Stream name without the query.
        stream: String,
        /// The query string (`auth_key=...`), without `?`.
        query: String,
    },
    /// The client wants to play: [`ServerSession::accept_play`] or
    /// [`ServerSession::reject_play`].
    PlayRequested {
        /// Message stream id.
        stream_id: u32,
        /// The connection's app.
        app: String,
        /// Stream name without the query.
        stream: String,
        /// The query string, without `?`.
        query: String,
    },
    /// An audio or video message of an accepted publication: an FLV tag
    /// body.
    Media {
        /// Message stream id.
        stream_id: u32,
        /// Audio or video.
        kind: MediaKind,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The FLV tag body.
        payload: Bytes,
    },
    /// `@setDataFrame onMetaData` (or `onMetaData`) of an accepted
    /// publication.
    Metadata {
        /// Message stream id.
        stream_id: u32,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The metadata object.
        metadata: Value,
        /// An `onMetaData` script-tag body for FLV files and players.
        payload: Bytes,
    },
    /// The publication ended (FCUnpublish, closeStream or deleteStream).
    Unpublished {
        /// Message stream id.
        stream_id: u32,
        /// Stream name.
        stream: String,
    },
    /// The client stopped playing (closeStream or deleteStream).
    PlayStopped {
        /// Message stream id.
        stream_id: u32,
        /// Stream name.
        stream: String,
    },
    /// The session failed; [`ServerEvent::Closed`] follows.
    Error(Error),
    /// The session is over: drain `poll_transmit` and close the socket.
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
enum Conn {
    Handshake,
    AwaitConnect,
    ConnectPending { object: Value },
    Connected,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StreamState {
    Idle,
    PublishPending(String),
    Publishing(String),
    PlayPending(String),
    Playing {
        name: String,
        audio: bool,
        video: bool,
    },
}

#[derive(Debug)]
struct Stream {
    id: u32,
    state: StreamState,
}

/// A server connection: handshake, connect, createStream, publish or play.
///
/// ```
/// use std::time::Instant;
/// use rts_rtmp::session::{Config, ServerEvent, ServerSession};
///
/// let mut session = ServerSession::new(Config::default(), &[7; 1528]);
/// // Feed what the socket read:
/// session.handle_input(Instant::now(), &[3]);
/// while let Some(bytes) = session.poll_transmit() {
///     // write `bytes` to the socket
/// #   let _ = bytes;
/// }
/// while let Some(event) = session.poll_event() {
///     match event {
///         ServerEvent::ConnectRequested { .. } => session.accept_connect().unwrap(),
///         ServerEvent::Closed => break,
///         _ => {}
///     }
/// }
/// ```
#[derive(Debug)]
pub struct ServerSession {
    config: Config,
    core: Core,
    handshake: handshake::Server,
    conn: Conn,
    connect_txn: f64,
    app: String,
    streams: Vec<Stream>,
    next_stream_id: u32,
    events: VecDeque<ServerEvent>,
}

impl ServerSession {
    /// A session for a freshly accepted connection. `random` fills the
    /// handshake's S1/S2.
    pub fn new(config: Config, random: &[u8; handshake::RANDOM_LEN]) -> Self {
        Self {
            config,
            core: Core::new(config.limits),
            handshake: handshake::Server::new(0, random),
            conn: Conn::Handshake,
            connect_txn: 0.0,
            app: String::new(),
            streams: Vec::new(),
            next_stream_id: 1,
            events: VecDeque::new(),
        }
    }

    /// Bytes received from the peer.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.conn == Conn::Closed {
            return;
        }
        self.core.take_input(now, data);
        if let Err(e) = self.process() {
            self.fail(e);
        }
    }

    /// When [`ServerSession::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.conn == Conn::Closed || self.only_playing() {
            return None;
        }
        self.core
            .last_input
            .and_then(|t| t.checked_add(self.config.idle_timeout))
    }

    /// Time passed: closes an idle connection.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.poll_timeout()
            && now >= deadline
        {
            self.fail(Error::IdleTimeout(self.config.idle_timeout));
        }
    }

    /// Bytes to write to the peer.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.core.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Whether the session ended (after the last transmit is written, close
    /// the socket).
    pub fn is_closed(&self) -> bool {
        self.conn == Conn::Closed
    }

    /// The app of the connection (empty before connect).
    pub fn app(&self) -> &str {
        &self.app
    }

    fn only_playing(&self) -> bool {
        self.streams
            .iter()
            .any(|s| matches!(s.state, StreamState::Playing { .. }))
            && !self
                .streams
                .iter()
                .any(|s| matches!(s.state, StreamState::Publishing(_)))
    }

    fn fail(&mut self, e: Error) {
        if self.conn != Conn::Closed {
            self.conn = Conn::Closed;
            self.events.push_back(ServerEvent::Error(e));
            self.events.push_back(ServerEvent::Closed);
        }
    }

    /// Replaces the chunk decoder's limits, e.g. small ones until the
    /// connection is authorised (a publish or play accepted), the
    /// publisher's own after. Applies to messages that start from now on.
    pub fn set_limits(&mut self, limits: crate::Limits) {
        self.core.decoder.set_limits(limits);
    }

    /// Ends the session cleanly for a server shutdown: each playing stream
    /// gets StreamEOF and `NetStream.Play.UnpublishNotify`, each publishing
    /// stream `NetStream.Unpublish.Success`, then the connection a `close`
    /// command (librtmp, and so OBS, closes on it), and the session is
    /// closed. Write what [`ServerSession::poll_transmit`] has, then close
    /// the socket.
    pub fn shutdown(&mut self) {
        if self.conn == Conn::Closed {
            return;
        }
        let playing: Vec<u32> = self
            .streams
            .iter()
            .filter(|s| matches!(s.state, StreamState::Playing { .. }))
            .map(|s| s.id)
            .collect();
        for id in playing {
            self.send_unpublish_notify(id);
        }
        let publishing: Vec<(u32, String)> = self
            .streams
            .iter()
            .filter_map(|s| match &s.state {
                StreamState::Publishing(name) => Some((s.id, name.clone())),
                _ => None,
            })
            .collect();
        for (id, name) in publishing {
            let d = format!(
                "/{}/{name} is unpublished: the server is shutting down.",
                self.app
            );
            self.status(id, Level::Status, code::UNPUBLISH_SUCCESS, &d);
        }
        if self.conn != Conn::Handshake {
            self.reply(&Command {
                name: "close".into(),
                transaction_id: 0.0,
                object: Value::Null,
                args: Vec::new(),
            });
        }
        self.close();
    }

    /// Closes the session from our side (the application's decision).
    pub fn close(&mut self) {
        if self.conn != Conn::Closed {
            self.conn = Conn::Closed;
            self.events.push_back(ServerEvent::Closed);
        }
    }

    fn process(&mut self) -> Result<(), Error> {
        if self.conn == Conn::Handshake {
            let before = self.core.input.len();
            let done = self
                .handshake
                .handle_input(&mut self.core.input, &mut self.core.out)?;
            let used = before.saturating_sub(self.core.input.len());
            self.core.handshake_bytes = self.core.handshake_bytes.saturating_add(used as u64);
            if !done {
                return Ok(());
            }
            self.conn = Conn::AwaitConnect;
        }
        // While the application decides on a request, later messages wait
        // in the input buffer (a pipelining client's media must not arrive
        // before its publish is accepted).
        while self.conn != Conn::Closed && !self.awaiting_decision() {
            let Some(msg) = self.core.decoder.decode(&mut self.core.input)? else {
                break;
            };
            self.core.maybe_ack();
            self.on_message(msg)?;
        }
        Ok(())
    }

    fn awaiting_decision(&self) -> bool {
        matches!(self.conn, Conn::ConnectPending { .. })
            || self.streams.iter().any(|s| {
                matches!(
                    s.state,
                    StreamState::PublishPending(_) | StreamState::PlayPending(_)
                )
            })
    }

    /// Goes on with buffered input after a decision.
    fn resume(&mut self) {
        if let Err(e) = self.process() {
            self.fail(e);
        }
    }

    fn on_message(&mut self, msg: Message) -> Result<(), Error> {
        if self.core.handle_control(&msg)? {
            return Ok(());
        }
        match msg.type_id {
            types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
                let cmd = Command::parse(msg.type_id, &msg.payload)?;
                self.on_command(msg.stream_id, cmd)
            }
            types::DATA_AMF0 | types::DATA_AMF3 => {
                if let Some(name) = self.publishing(msg.stream_id) {
                    let _ = name;
                    let data = Data::parse(msg.type_id, &msg.payload)?;
                    if let Some(meta) = data.metadata() {
                        self.events.push_back(ServerEvent::Metadata {
                            stream_id: msg.stream_id,
                            timestamp: msg.timestamp,
                            payload: metadata_body(meta),
                            metadata: meta.clone(),
                        });
                    }
                }
                Ok(())
            }
            types::AUDIO | types::VIDEO => {
                if self.publishing(msg.stream_id).is_some() {
                    let kind = if msg.type_id == types::AUDIO {
                        MediaKind::Audio
                    } else {
                        MediaKind::Video
                    };
                    self.events.push_back(ServerEvent::Media {
                        stream_id: msg.stream_id,
                        kind,
                        timestamp: msg.timestamp,
                        payload: msg.payload,
                    });
                }
                Ok(())
            }
            types::AGGREGATE => {
                for m in split_aggregate(&msg)? {
                    if m.type_id != types::AGGREGATE {
                        self.on_message(m)?;
                    }
                }
                Ok(())
            }
            // Shared objects and unknown types are ignored.
            _ => Ok(()),
        }
    }

    fn publishing(&self, stream_id: u32) -> Option<&str> {
        self.streams.iter().find_map(|s| match &s.state {
            StreamState::Publishing(n) if s.id == stream_id => Some(n.as_str()),
            _ => None,
        })
    }

    /// `publish` or `play`: the name may carry a query (`demo?auth_key=…`);
    /// the stream must come from createStream and be idle. The application
    /// answers the event with `accept_*` or `reject_*`.
    fn request_stream(&mut self, stream_id: u32, name: &str, publish: bool) {
        let (stream, query) = command::split_name(name);
        let (stream, query) = (stream.to_owned(), query.to_owned());
        let app = self.app.clone();
        let valid = !stream.is_empty();
        match self.stream_mut(stream_id) {
            Some(s) if valid && s.state == StreamState::Idle => {
                let event = if publish {
                    s.state = StreamState::PublishPending(stream.clone());
                    ServerEvent::PublishRequested {
                        stream_id,
                        app,
                        stream,
                        query,
                    }
                } else {
                    s.state = StreamState::PlayPending(stream.clone());
                    ServerEvent::PlayRequested {
                        stream_id,
                        app,
                        stream,
                        query,
                    }
                };
                self.events.push_back(event);
            }
            _ if publish => {
                let why = if valid {
                    "publish needs a stream from createStream that is not in use"
                } else {
                    "publish needs a stream name, as in rtmp://host/app/stream"
                };
                self.status(stream_id, Level::Error, code::PUBLISH_BAD_NAME, why);
            }
            _ => self.status(
                stream_id,
                Level::Error,
                code::PLAY_STREAM_NOT_FOUND,
                "play needs a stream name and a stream from createStream that is not in use",
            ),
        }
    }

    fn stream_mut(&mut self, stream_id: u32) -> Option<&mut Stream> {
        self.streams.iter_mut().find(|s| s.id == stream_id)
    }

    fn reply(&mut self, cmd: &Command) {
        self.core.send_command(csid::COMMAND, 0, cmd);
    }

    fn status(&mut self, stream_id: u32, level: Level, code: &str, description: &str) {
        let cmd = command::on_status(level, code, description);
        self.core.send_command(csid::STREAM, stream_id, &cmd);
    }

    fn on_command(&mut self, msid: u32, cmd: Command) -> Result<(), Error> {
        let txn = cmd.transaction_id;
        match (cmd.name.as_str(), &self.conn) {
            ("connect", Conn::AwaitConnect) => {
                let app_full = cmd.object.get("app").and_then(Value::as_str).unwrap_or("");
                let (app, query) = command::split_name(app_full.trim_matches('/'));
                let (app, query) = (app.to_owned(), query.to_owned());
                self.app.clone_from(&app);
                self.connect_txn = txn;
                let tc_url = cmd
                    .object
                    .get("tcUrl")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.conn = Conn::ConnectPending {
                    object: cmd.object.clone(),
                };
                self.events.push_back(ServerEvent::ConnectRequested {
                    app,
                    query,
                    tc_url,
                    object: cmd.object,
                });
                Ok(())
            }
            ("connect", _) => Err(Error::Protocol("connect sent twice")),
            (_, Conn::AwaitConnect | Conn::ConnectPending { .. }) => {
                // Commands before the connection is accepted.
                self.reply(&command::error(
                    txn,
                    code::CALL_FAILED,
                    "send connect first and wait for its _result",
                ));
                Ok(())
            }
            ("createStream", _) => {
                if self.streams.len() >= self.config.max_streams as usize {
                    self.reply(&command::error(
                        txn,
                        code::CALL_FAILED,
                        "too many streams on this connection: delete one first",
                    ));
                    return Ok(());
                }
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.streams.push(Stream {
                    id,
                    state: StreamState::Idle,
                });
                self.reply(&command::result(txn, Value::from(f64::from(id))));
                Ok(())
            }
            ("releaseStream" | "FCPublish" | "FCSubscribe", _) => {
                if txn != 0.0 {
                    self.reply(&command::result(txn, Value::Undefined));
                }
                Ok(())
            }
            ("publish", _) => {
                self.request_stream(msid, cmd.arg_str(0).unwrap_or(""), true);
                Ok(())
            }
            ("play", _) => {
                self.request_stream(msid, cmd.arg_str(0).unwrap_or(""), false);
                Ok(())
            }
            ("FCUnpublish", _) => {
                let name = cmd.arg_str(0).unwrap_or("").to_owned();
                let (name, _) = command::split_name(&name);
                let found = self.streams.iter().find_map(|s| match &s.state {
                    StreamState::Publishing(n) if n == name => Some(s.id),
                    _ => None,
                });
                if let Some(id) = found {
                    self.end_stream(id, false);
                }
                if txn != 0.0 {
                    self.reply(&command::result(txn, Value::Undefined));
                }
                Ok(())
            }
            ("deleteStream", _) => {
                // A number, or (GStreamer rtmp2sink) the stream name.
                let id = match cmd.args.first() {
                    Some(Value::Number(n)) => Some(*n as u32),
                    Some(Value::String(name)) => {
                        let (name, _) = command::split_name(name);
                        self.streams.iter().find_map(|s| match &s.state {
                            StreamState::Publishing(n)
                            | StreamState::PublishPending(n)
                            | StreamState::PlayPending(n)
                            | StreamState::Playing { name: n, .. }
                                if n == name =>
                            {
                                Some(s.id)
                            }
                            _ => None,
                        })
                    }
                    _ => None,
                };
                if let Some(id) = id {
                    self.end_stream(id, true);
                }
                Ok(())
            }
            ("closeStream", _) => {
                self.end_stream(msid, false);
                Ok(())
            }
            ("receiveAudio" | "receiveVideo", _) => {
                let on = cmd.args.first().and_then(Value::as_bool).unwrap_or(true);
                let audio = cmd.name == "receiveAudio";
                if let Some(s) = self.stream_mut(msid)
                    && let StreamState::Playing {
                        audio: a, video: v, ..
                    } = &mut s.state
                {
                    if audio {
                        *a = on;
                    } else {
                        *v = on;
                    }
                }
                Ok(())
            }
            ("getStreamLength", _) => {
                self.reply(&command::result(txn, Value::from(0.0)));
                Ok(())
            }
            // Replies to our own calls (none expected) and notifications.
            ("_result" | "_error" | "onStatus" | "onBWDone" | "_checkbw", _) => {
                if cmd.name == "_checkbw" && txn != 0.0 {
                    self.reply(&command::result(txn, Value::Undefined));
                }
                Ok(())
            }
            (other, _) => {
                let d = format!("unknown command '{other}'");
                self.reply(&command::error(txn, code::CALL_FAILED, &d));
                Ok(())
            }
        }
    }

    /// Ends publishing or playing on a stream; `delete` also frees its id.
    fn end_stream(&mut self, id: u32, delete: bool) {
        let Some(pos) = self.streams.iter().position(|s| s.id == id) else {
            return;
        };
        let old = self
            .streams
            .get_mut(pos)
            .map(|s| std::mem::replace(&mut s.state, StreamState::Idle));
        match old {
            Some(StreamState::Publishing(stream)) => {
                self.events.push_back(ServerEvent::Unpublished {
                    stream_id: id,
                    stream,
                });
            }
            Some(StreamState::Playing { name, .. }) => {
                self.events.push_back(ServerEvent::PlayStopped {
                    stream_id: id,
                    stream: name,
                });
            }
            _ => {}
        }
        if delete {
            self.streams.remove(pos);
        }
    }

    /// Accepts the pending connect: window, bandwidth and chunk size, then
    /// `_result` with the server's capabilities.
    pub fn accept_connect(&mut self) -> Result<(), Error> {
        let Conn::ConnectPending { object, .. } = &self.conn else {
            return Err(Error::InvalidState("no connect is pending"));
        };
        let reply = command::connect_result(self.connect_txn, object);
        self.conn = Conn::Connected;
        self.core
            .send_control(&Control::WindowAckSize(self.config.window_ack_size));
        self.core.send_control(&Control::SetPeerBandwidth {
            size: self.config.peer_bandwidth,
            limit: LimitType::Dynamic,
        });
        self.core
            .send_control(&Control::SetChunkSize(self.config.chunk_size));
        self.reply(&reply);
        self.resume();
        Ok(())
    }

    /// Rejects the pending connect with `NetConnection.Connect.Rejected`
    /// and `description` (say why and what to do), then closes.
    pub fn reject_connect(&mut self, description: &str) -> Result<(), Error> {
        if !matches!(self.conn, Conn::ConnectPending { .. }) {
            return Err(Error::InvalidState("no connect is pending"));
        }
        let reply = command::error(self.connect_txn, code::CONNECT_REJECTED, description);
        self.reply(&reply);
        self.close();
        Ok(())
    }

    /// Accepts a pending publish: StreamBegin and `NetStream.Publish.Start`.
    pub fn accept_publish(&mut self, stream_id: u32) -> Result<(), Error> {
        let s = self
            .stream_mut(stream_id)
            .ok_or(Error::InvalidState("no such stream"))?;
        let StreamState::PublishPending(name) = &s.state else {
            return Err(Error::InvalidState("no publish is pending on this stream"));
        };
        let name = name.clone();
        s.state = StreamState::Publishing(name.clone());
        self.core
            .send_control(&Control::UserControl(UserControl::StreamBegin(stream_id)));
        let d = format!("/{}/{name} is now published.", self.app);
        self.status(stream_id, Level::Status, code::PUBLISH_START, &d);
        self.resume();
        Ok(())
    }

    /// Rejects a pending publish with `code` (for example
    /// [`code::PUBLISH_BAD_NAME`] or [`code::PUBLISH_UNAUTHORIZED`]) and
    /// `description`.
    pub fn reject_publish(
        &mut self,
        stream_id: u32,
        code: &str,
        description: &str,
    ) -> Result<(), Error> {
        let s = self
            .stream_mut(stream_id)
            .ok_or(Error::InvalidState("no such stream"))?;
        if !matches!(s.state, StreamState::PublishPending(_)) {
            return Err(Error::InvalidState("no publish is pending on this stream"));
        }
        s.state = StreamState::Idle;
        self.status(stream_id, Level::Error, code, description);
        self.resume();
        Ok(())
    }

    /// Accepts a pending play: StreamBegin, `NetStream.Play.Reset`,
    /// `NetStream.Play.Start` and `|RtmpSampleAccess`. Then send
    /// metadata and media with [`ServerSession::send_metadata`] and
    /// [`ServerSession::send_media`].
    pub fn accept_play(&mut self, stream_id: u32) -> Result<(), Error> {
        let s = self
            .stream_mut(stream_id)
            .ok_or(Error::InvalidState("no such stream"))?;
        let StreamState::PlayPending(name) = &s.state else {
            return Err(Error::InvalidState("no play is pending on this stream"));
        };
        let name = name.clone();
        s.state = StreamState::Playing {
            name: name.clone(),
            audio: true,
            video: true,
        };
        self.core
            .send_control(&Control::UserControl(UserControl::StreamBegin(stream_id)));
        let d = format!("Playing and resetting /{}/{name}.", self.app);
        self.status(stream_id, Level::Status, code::PLAY_RESET, &d);
        let d = format!("Started playing /{}/{name}.", self.app);
        self.status(stream_id, Level::Status, code::PLAY_START, &d);
        self.core
            .send_data(stream_id, 0, command::sample_access().encode());
        self.resume();
        Ok(())
    }

    /// Rejects a pending play with `NetStream.Play.StreamNotFound`.
    pub fn reject_play(&mut self, stream_id: u32, description: &str) -> Result<(), Error> {
        let s = self
            .stream_mut(stream_id)
            .ok_or(Error::InvalidState("no such stream"))?;
        if !matches!(s.state, StreamState::PlayPending(_)) {
            return Err(Error::InvalidState("no play is pending on this stream"));
        }
        s.state = StreamState::Idle;
        self.status(
            stream_id,
            Level::Error,
            code::PLAY_STREAM_NOT_FOUND,
            description,
        );
        self.resume();
        Ok(())
    }

    fn playing(&self, stream_id: u32) -> Option<(bool, bool)> {
        self.streams.iter().find_map(|s| match &s.state {
            StreamState::Playing { audio, video, .. } if s.id == stream_id => {
                Some((*audio, *video))
            }
            _ => None,
        })
    }

    /// Sends an audio or video tag body to a playing stream. Returns false
    /// (and sends nothing) when the stream is not playing or the client
    /// turned that kind off (receiveAudio/receiveVideo false).
    pub fn send_media(
        &mut self,
        stream_id: u32,
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    ) -> bool {
        let Some((audio, video)) = self.playing(stream_id) else {
            return false;
        };
        let (on, cs) = match kind {
            MediaKind::Audio => (audio, csid::AUDIO),
            MediaKind::Video => (video, csid::VIDEO),
        };
        if on && self.conn != Conn::Closed {
            let m = Message::new(cs, timestamp, kind.type_id(), stream_id, payload);
            self.core.send(&m);
        }
        on
    }

    /// Sends an `onMetaData` script body (see [`super::metadata_body`]) to a
    /// playing stream.
    pub fn send_metadata(&mut self, stream_id: u32, payload: Bytes) -> bool {
        if self.playing(stream_id).is_none() || self.conn == Conn::Closed {
            return false;
        }
        self.core.send_data(stream_id, 0, payload);
        true
    }

    /// Tells a player that the publisher left: StreamEOF and
    /// `NetStream.Play.UnpublishNotify`.
    pub fn send_unpublish_notify(&mut self, stream_id: u32) -> bool {
        let Some(name) = self.streams.iter().find_map(|s| match &s.state {
            StreamState::Playing { name, .. } if s.id == stream_id => Some(name.clone()),
            _ => None,
        }) else {
            return false;
        };
        self.core
            .send_control(&Control::UserControl(UserControl::StreamEof(stream_id)));
        let d = format!("/{}/{name} is now unpublished.", self.app);
        self.status(stream_id, Level::Status, code::PLAY_UNPUBLISH_NOTIFY, &d);
        true
    }
}
