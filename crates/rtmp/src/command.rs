//! Command and data messages (Adobe RTMP 1.0 section 7.1.1, 7.1.2 and 7.2):
//! AMF0 `[name, transaction id, command object, args...]`, and the replies
//! and status events a server sends.
//!
//! AMF0 itself is `rts_flv::amf0`.

use bytes::{Bytes, BytesMut};
use rts_flv::amf0::{self, Value};

use crate::Error;
use crate::message::types;

/// Limits for AMF0 in commands: depth 16 stops nesting bombs early; 65536
/// values are plenty for any command or `onMetaData`.
pub const AMF_LIMITS: amf0::Limits = amf0::Limits {
    max_depth: 16,
    max_values: 1 << 16,
};

/// A command message (7.1.1): `name`, transaction id, command object, then
/// optional arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Command name (`connect`, `publish`, `_result`, `onStatus`...).
    pub name: String,
    /// Transaction id; 0 means no reply is expected.
    pub transaction_id: f64,
    /// The command object (often null).
    pub object: Value,
    /// Further arguments.
    pub args: Vec<Value>,
}

fn body(type_id: u8, payload: &[u8]) -> &[u8] {
    // AMF3 command/data messages start with a 0 byte, then AMF0 values
    // (clients switch to AMF3 only for values marked 0x11).
    if matches!(type_id, types::COMMAND_AMF3 | types::DATA_AMF3) && payload.first() == Some(&0) {
        payload.get(1..).unwrap_or_default()
    } else {
        payload
    }
}

impl Command {
    /// A command with no arguments.
    pub fn new(name: &str, transaction_id: f64, object: Value) -> Self {
        Self {
            name: name.to_owned(),
            transaction_id,
            object,
            args: Vec::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, v: Value) -> Self {
        self.args.push(v);
        self
    }

    /// Parses a command message body (type 20, or 17 with its leading 0).
    pub fn parse(type_id: u8, payload: &[u8]) -> Result<Self, Error> {
        let what = "command";
        let mut values = amf0::decode_all_with(body(type_id, payload), AMF_LIMITS)
            .map_err(|source| Error::Amf { what, source })?
            .into_iter();
        let name = match values.next() {
            Some(Value::String(s)) => s,
            _ => {
                return Err(Error::Malformed {
                    what,
                    why: "does not start with a name string",
                });
            }
        };
        // Some clients omit the transaction id and object on notifications.
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Value::Null);
        Ok(Self {
            name,
            transaction_id,
            object,
            args: values.collect(),
        })
    }

    /// The AMF0 body.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        amf0::encode(&Value::String(self.name.clone()), &mut b);
        amf0::encode(&Value::Number(self.transaction_id), &mut b);
        amf0::encode(&self.object, &mut b);
        amf0::encode_all(&self.args, &mut b);
        b.freeze()
    }

    /// The `n`th argument as a string.
    pub fn arg_str(&self, n: usize) -> Option<&str> {
        self.args.get(n).and_then(Value::as_str)
    }
}

/// A data message (7.1.2): a name then values (`@setDataFrame`,
/// `onMetaData`, `|RtmpSampleAccess`).
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// The first value, a string.
    pub name: String,
    /// The values after it.
    pub values: Vec<Value>,
}

impl Data {
    /// Parses a data message body (type 18, or 15 with its leading 0).
    pub fn parse(type_id: u8, payload: &[u8]) -> Result<Self, Error> {
        let what = "data message";
        let mut values = amf0::decode_all_with(body(type_id, payload), AMF_LIMITS)
            .map_err(|source| Error::Amf { what, source })?
            .into_iter();
        match values.next() {
            Some(Value::String(name)) => Ok(Self {
                name,
                values: values.collect(),
            }),
            _ => Err(Error::Malformed {
                what,
                why: "does not start with a name string",
            }),
        }
    }

    /// The AMF0 body.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        amf0::encode(&Value::String(self.name.clone()), &mut b);
        amf0::encode_all(&self.values, &mut b);
        b.freeze()
    }

    /// For `@setDataFrame onMetaData {..}` or `onMetaData {..}`: the
    /// metadata value. `None` for other data messages.
    pub fn metadata(&self) -> Option<&Value> {
        match self.name.as_str() {
            "@setDataFrame" => match self.values.first() {
                Some(Value::String(n)) if n == "onMetaData" => self.values.get(1),
                _ => None,
            },
            "onMetaData" => self.values.first(),
            _ => None,
        }
    }
}

/// Status levels of `onStatus` info objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// "status"
    Status,
    /// "warning"
    Warning,
    /// "error"
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Status => "status",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// Status codes this crate sends.
pub mod code {
    /// connect accepted.
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    /// connect refused (with a description saying why).
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    /// A call the server does not know.
    pub const CALL_FAILED: &str = "NetConnection.Call.Failed";
    /// publish accepted.
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    /// publish refused: the name is in use or not allowed.
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    /// publish refused: authorization failed.
    pub const PUBLISH_UNAUTHORIZED: &str = "NetStream.Publish.Unauthorized";
    /// unpublish done.
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    /// play: the playlist was reset.
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    /// play accepted.
    pub const PLAY_START: &str = "NetStream.Play.Start";
    /// play refused: no such stream.
    pub const PLAY_STREAM_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    /// the publisher of a played stream left.
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    /// the publisher of a played stream (re)started.
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
}

/// An info object `{level, code, description}`.
pub fn info(level: Level, code: &str, description: &str) -> Value {
    Value::object([
        ("level", Value::from(level.as_str())),
        ("code", Value::from(code)),
        ("description", Value::from(description)),
    ])
}

/// `onStatus(0, null, {level, code, description})` (7.2.2).
pub fn on_status(level: Level, code: &str, description: &str) -> Command {
    Command::new("onStatus", 0.0, Value::Null).arg(info(level, code, description))
}

/// Whether a client's `connect` command object says it decodes `fourcc`
/// (Enhanced RTMP v2, "Enhancing NetConnection connect Command"): listed in
/// its `fourCcList` (or the wildcard `*`), or in its `audioFourCcInfoMap` /
/// `videoFourCcInfoMap` with the CanDecode flag (0x01). A legacy client
/// (neither) decodes only the legacy codecs.
pub fn can_decode(connect: &Value, fourcc: &str) -> bool {
    let listed = connect
        .get("fourCcList")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter()
                .any(|v| v.as_str().is_some_and(|c| c == fourcc || c == "*"))
        });
    let mapped = ["audioFourCcInfoMap", "videoFourCcInfoMap"]
        .iter()
        .any(|map| {
            connect
                .get(map)
                .and_then(Value::properties)
                .is_some_and(|m| {
                    m.iter().any(|(k, v)| {
                        (k == fourcc || k == "*") && v.as_f64().is_some_and(|f| (f as u32) & 1 == 1)
                    })
                })
        });
    listed || mapped
}

/// `_result` of connect (7.2.1.1): server properties (with the client's
/// Enhanced RTMP `fourCcList` echoed when it offered one) and a success info
/// object.
pub fn connect_result(transaction_id: f64, client: &Value) -> Command {
    let mut props = vec![
        ("fmsVer".to_owned(), Value::from("FMS/3,0,1,123")),
        ("capabilities".to_owned(), Value::from(31.0)),
    ];
    if let Some(list) = client.get("fourCcList") {
        props.push(("fourCcList".to_owned(), list.clone()));
    }
    let encoding = client
        .get("objectEncoding")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let mut info = info(
        Level::Status,
        code::CONNECT_SUCCESS,
        "Connection succeeded.",
    );
    if let Some(p) = info.properties_mut() {
        p.push(("objectEncoding".to_owned(), Value::from(encoding)));
    }
    Command::new("_result", transaction_id, Value::Object(props)).arg(info)
}

/// `_error` for a call we refuse or do not know.
pub fn error(transaction_id: f64, code: &str, description: &str) -> Command {
    Command::new("_error", transaction_id, Value::Null).arg(info(Level::Error, code, description))
}

/// `_result(txn, null, value)`.
pub fn result(transaction_id: f64, value: Value) -> Command {
    Command::new("_result", transaction_id, Value::Null).arg(value)
}

/// `|RtmpSampleAccess(true, true)`: lets Flash players read the samples.
pub fn sample_access() -> Data {
    Data {
        name: "|RtmpSampleAccess".to_owned(),
        values: vec![Value::Boolean(true), Value::Boolean(true)],
    }
}

/// Splits a publish/play name `stream?query` into its parts.
pub fn split_name(name: &str) -> (&str, &str) {
    name.split_once('?').unwrap_or((name, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_connect_from_the_pcap_parses() {
        // Built as ffmpeg 5.1 sends it (see the pcap fixture).
        let cmd = Command::new(
            "connect",
            1.0,
            Value::object([
                ("app", Value::from("live")),
                ("type", Value::from("nonprivate")),
                (
                    "flashVer",
                    Value::from("FMLE/3.0 (compatible; Lavf59.27.100)"),
                ),
                ("tcUrl", Value::from("rtmp://127.0.0.1:1935/live")),
            ]),
        );
        let parsed = Command::parse(types::COMMAND_AMF0, &cmd.encode()).unwrap();
        assert_eq!(parsed, cmd);
        let mut amf3 = vec![0u8];
        amf3.extend_from_slice(&cmd.encode());
        assert_eq!(Command::parse(types::COMMAND_AMF3, &amf3).unwrap(), cmd);
    }

    #[test]
    fn can_decode_reads_the_four_cc_list_and_info_maps() {
        let list =
            |codecs: &[&str]| Value::StrictArray(codecs.iter().map(|c| Value::from(*c)).collect());
        let plain = Value::object([("app", Value::from("live"))]);
        assert!(!can_decode(&plain, "Opus"), "a legacy connect");
        let video_only = Value::object([("fourCcList", list(&["avc1", "hvc1"]))]);
        assert!(!can_decode(&video_only, "Opus"));
        assert!(can_decode(&video_only, "hvc1"));
        for codecs in [&["hvc1", "Opus"][..], &["*"][..]] {
            let v = Value::object([("fourCcList", list(codecs))]);
            assert!(can_decode(&v, "Opus"), "{codecs:?}");
        }
        // CanDecode (1) set, or only CanEncode (2).
        let map = |flags: f64| {
            Value::object([(
                "audioFourCcInfoMap",
                Value::object([("Opus", Value::Number(flags))]),
            )])
        };
        assert!(can_decode(&map(1.0), "Opus") && can_decode(&map(3.0), "Opus"));
        assert!(!can_decode(&map(2.0), "Opus"));
    }

    #[test]
    fn connect_result_echoes_four_cc_list() {
        let list = Value::StrictArray(vec![Value::from("hvc1"), Value::from("av01")]);
        let client = Value::object([("app", Value::from("live")), ("fourCcList", list.clone())]);
        let r = connect_result(1.0, &client);
        assert_eq!(r.object.get("fourCcList"), Some(&list));
        assert_eq!(
            r.args[0].get("code").and_then(Value::as_str),
            Some(code::CONNECT_SUCCESS)
        );
        let plain = connect_result(1.0, &Value::object([("app", Value::from("live"))]));
        assert!(plain.object.get("fourCcList").is_none());
    }

    #[test]
    fn metadata_from_set_data_frame() {
        let meta = Value::ecma_array([("width", Value::from(1280.0))]);
        let d = Data {
            name: "@setDataFrame".into(),
            values: vec![Value::from("onMetaData"), meta.clone()],
        };
        let parsed = Data::parse(types::DATA_AMF0, &d.encode()).unwrap();
        assert_eq!(parsed.metadata(), Some(&meta));
    }

    #[test]
    fn malformed_commands_are_errors() {
        assert!(Command::parse(20, &[0x00, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Command::parse(20, &[0x02, 0x00]).is_err());
        // A nesting bomb: 10 000 nested objects.
        let mut bomb = vec![0x02, 0, 1, b'x', 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for _ in 0..10_000 {
            bomb.extend_from_slice(&[0x03, 0, 1, b'a']);
        }
        assert!(matches!(Command::parse(20, &bomb), Err(Error::Amf { .. })));
        assert_eq!(
            split_name("demo?auth_key=1-0-0-x"),
            ("demo", "auth_key=1-0-0-x")
        );
        assert_eq!(split_name("demo"), ("demo", ""));
    }
}
