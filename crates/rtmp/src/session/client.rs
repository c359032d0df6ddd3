//! The client side: connect, then publish or play one stream.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rts_flv::amf0::Value;

use super::{Config, Core, MediaKind, csid};
use crate::Error;
use crate::chunk::Message;
use crate::command::{Command, Data, code};
use crate::handshake;
use crate::message::{Control, UserControl, types};

/// What a [`ClientSession`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// connect was accepted.
    Connected,
    /// `NetStream.Publish.Start`: send media now.
    PublishStarted {
        /// Message stream id.
        stream_id: u32,
    },
    /// `NetStream.Play.Start`.
    PlayStarted {
        /// Message stream id.
        stream_id: u32,
    },
    /// Any other status event (`NetStream.Play.UnpublishNotify`...).
    Status {
        /// The status code.
        code: String,
        /// Its description.
        description: String,
    },
    /// Audio or video of the played stream.
    Media {
        /// Audio or video.
        kind: MediaKind,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// FLV tag body.
        payload: Bytes,
    },
    /// Metadata of the played stream.
    Metadata {
        /// The metadata object.
        metadata: Value,
    },
    /// The session failed ([`Error::Rejected`] when the server said no);
    /// [`ClientEvent::Closed`] follows.
    Error(Error),
    /// The session is over.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Publish(String),
    Play(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Connecting,
    Connected,
    Closed,
}

/// A client connection that publishes or plays one stream.
#[derive(Debug)]
pub struct ClientSession {
    config: Config,
    pub(super) core: Core,
    handshake: handshake::Client,
    state: State,
    app: String,
    tc_url: String,
    next_txn: f64,
    /// createStream transactions in flight, with what they are for.
    pending: Vec<(f64, Want)>,
    queued: Vec<Want>,
    stream_id: Option<u32>,
    events: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// A client for `tc_url` (`rtmp://host[:port]/app`) and `app`. The
    /// handshake's C0+C1 is ready in `poll_transmit` right away.
    pub fn new(
        config: Config,
        tc_url: &str,
        app: &str,
        random: &[u8; handshake::RANDOM_LEN],
    ) -> Self {
        let mut core = Core::new(config.limits);
        let mut hs = handshake::Client::new(handshake::Kind::Digest, 0, random);
        hs.start(&mut core.out);
        Self {
            config,
            core,
            handshake: hs,
            state: State::Handshake,
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            next_txn: 2.0,
            pending: Vec::new(),
            queued: Vec::new(),
            stream_id: None,
            events: VecDeque::new(),
        }
    }

    /// Publishes `name` (`stream` or `stream?query`) once connected.
    pub fn publish(&mut self, name: &str) {
        self.want(Want::Publish(name.to_owned()));
    }

    /// Plays `name` once connected.
    pub fn play(&mut self, name: &str) {
        self.want(Want::Play(name.to_owned()));
    }

    fn want(&mut self, w: Want) {
        if self.state == State::Connected {
            self.create_stream(w);
        } else {
            self.queued.push(w);
        }
    }

    fn txn(&mut self) -> f64 {
        let t = self.next_txn;
        self.next_txn += 1.0;
        t
    }

    fn create_stream(&mut self, w: Want) {
        if let Want::Publish(name) = &w {
            let name = Value::from(name.as_str());
            for n in ["releaseStream", "FCPublish"] {
                let t = self.txn();
                let c = Command::new(n, t, Value::Null).arg(name.clone());
                self.core.send_command(csid::COMMAND, 0, &c);
            }
        }
        let t = self.txn();
        self.core.send_command(
            csid::COMMAND,
            0,
            &Command::new("createStream", t, Value::Null),
        );
        self.pending.push((t, w));
    }

    /// Bytes received from the server.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        self.core.take_input(now, data);
        if let Err(e) = self.process() {
            self.fail(e);
        }
    }

    /// The client keeps no timers; always `None`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Nothing to do (no timers); present for the common session shape.
    pub fn handle_timeout(&mut self, _now: Instant) {}

    /// Bytes to write to the server.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.core.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn fail(&mut self, e: Error) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.events.push_back(ClientEvent::Error(e));
            self.events.push_back(ClientEvent::Closed);
        }
    }

    fn process(&mut self) -> Result<(), Error> {
        if self.state == State::Handshake {
            if !self
                .handshake
                .handle_input(&mut self.core.input, &mut self.core.out)?
            {
                return Ok(());
            }
            self.state = State::Connecting;
            self.core
                .send_control(&Control::SetChunkSize(self.config.chunk_size));
            let obj = Value::object([
                ("app", Value::from(self.app.as_str())),
                ("type", Value::from("nonprivate")),
                ("flashVer", Value::from("FMLE/3.0 (compatible; rts)")),
                ("tcUrl", Value::from(self.tc_url.as_str())),
                (
                    "fourCcList",
                    Value::StrictArray(vec![Value::from("avc1"), Value::from("Opus")]),
                ),
            ]);
            self.core
                .send_command(csid::COMMAND, 0, &Command::new("connect", 1.0, obj));
        }
        while self.state != State::Closed {
            let Some(msg) = self.core.decoder.decode(&mut self.core.input)? else {
                break;
            };
            self.core.maybe_ack();
            self.on_message(msg)?;
        }
        Ok(())
    }

    fn on_message(&mut self, msg: Message) -> Result<(), Error> {
        if self.core.handle_control(&msg)? {
            if let Ok(Some(Control::SetPeerBandwidth { size, .. })) = Control::parse(&msg) {
                self.core.send_control(&Control::WindowAckSize(size));
            }
            return Ok(());
        }
        match msg.type_id {
            types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
                let cmd = Command::parse(msg.type_id, &msg.payload)?;
                self.on_command(msg.stream_id, cmd)
            }
            types::DATA_AMF0 | types::DATA_AMF3 => {
                let data = Data::parse(msg.type_id, &msg.payload)?;
                if let Some(meta) = data.metadata() {
                    self.events.push_back(ClientEvent::Metadata {
                        metadata: meta.clone(),
                    });
                }
                Ok(())
            }
            types::AUDIO | types::VIDEO => {
                let kind = if msg.type_id == types::AUDIO {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                self.events.push_back(ClientEvent::Media {
                    kind,
                    timestamp: msg.timestamp,
                    payload: msg.payload,
                });
                Ok(())
            }
            types::AGGREGATE => {
                for m in super::split_aggregate(&msg)? {
                    if m.type_id != types::AGGREGATE {
                        self.on_message(m)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn on_command(&mut self, _msid: u32, cmd: Command) -> Result<(), Error> {
        let info = |c: &Command| {
            let i = c.args.first();
            let get = |k| {
                i.and_then(|v| v.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            (get("level"), get("code"), get("description"))
        };
        match cmd.name.as_str() {
            "_result" if self.state == State::Connecting && cmd.transaction_id == 1.0 => {
                self.state = State::Connected;
                self.events.push_back(ClientEvent::Connected);
                for w in std::mem::take(&mut self.queued) {
                    self.create_stream(w);
                }
            }
            "_error" if self.state == State::Connecting && cmd.transaction_id == 1.0 => {
                let (_, code, description) = info(&cmd);
                return Err(Error::Rejected { code, description });
            }
            "_result" => {
                let pos = self
                    .pending
                    .iter()
                    .position(|(t, _)| *t == cmd.transaction_id);
                if let Some(pos) = pos {
                    let (_, want) = self.pending.remove(pos);
                    let sid = cmd.args.first().and_then(Value::as_f64).unwrap_or(0.0) as u32;
                    self.stream_id = Some(sid);
                    match want {
                        Want::Publish(name) => {
                            let c = Command::new("publish", 0.0, Value::Null)
                                .arg(Value::from(name))
                                .arg(Value::from("live"));
                            self.core.send_command(csid::PUBLISH, sid, &c);
                        }
                        Want::Play(name) => {
                            let c = Command::new("play", 0.0, Value::Null)
                                .arg(Value::from(name))
                                .arg(Value::from(-2000.0));
                            self.core.send_command(csid::PUBLISH, sid, &c);
                            self.core.send_control(&Control::UserControl(
                                UserControl::SetBufferLength {
                                    stream_id: sid,
                                    millis: 1000,
                                },
                            ));
                        }
                    }
                }
            }
            "onStatus" => {
                let (level, code, description) = info(&cmd);
                let sid = self.stream_id.unwrap_or(0);
                if code == code::PUBLISH_START {
                    self.events
                        .push_back(ClientEvent::PublishStarted { stream_id: sid });
                } else if code == code::PLAY_START {
                    self.events
                        .push_back(ClientEvent::PlayStarted { stream_id: sid });
                } else if level == "error" {
                    return Err(Error::Rejected { code, description });
                } else {
                    self.events
                        .push_back(ClientEvent::Status { code, description });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends an audio or video tag body on the published stream; false
    /// before `PublishStarted`.
    pub fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) -> bool {
        let Some(sid) = self.stream_id else {
            return false;
        };
        let cs = match kind {
            MediaKind::Audio => csid::AUDIO,
            MediaKind::Video => csid::VIDEO,
        };
        self.core
            .send(&Message::new(cs, timestamp, kind.type_id(), sid, payload));
        true
    }

    /// Sends `@setDataFrame onMetaData metadata` on the published stream.
    pub fn send_metadata(&mut self, metadata: &Value) -> bool {
        let Some(sid) = self.stream_id else {
            return false;
        };
        let d = Data {
            name: "@setDataFrame".to_owned(),
            values: vec![Value::from("onMetaData"), metadata.clone()],
        };
        self.core.send_data(sid, 0, d.encode());
        true
    }

    /// Ends the publication or playback (FCUnpublish when publishing,
    /// deleteStream) and closes.
    pub fn close(&mut self, publishing_name: Option<&str>) {
        if self.state == State::Connected {
            if let Some(name) = publishing_name {
                let t = self.txn();
                let c = Command::new("FCUnpublish", t, Value::Null).arg(Value::from(name));
                self.core.send_command(csid::COMMAND, 0, &c);
            }
            if let Some(sid) = self.stream_id {
                let t = self.txn();
                let c =
                    Command::new("deleteStream", t, Value::Null).arg(Value::from(f64::from(sid)));
                self.core.send_command(csid::COMMAND, 0, &c);
            }
        }
        if self.state != State::Closed {
            self.state = State::Closed;
            self.events.push_back(ClientEvent::Closed);
        }
    }
}
