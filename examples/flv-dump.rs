//! Prints one line per tag of an FLV file, like a small ffprobe:
//!
//! ```text
//! cargo run --example flv-dump FILE
//! ```
//!
//! Columns: timestamp in ms, tag type, codec, frame type or `-`, packet
//! type, composition time in ms (`ct=`), and `size=` the payload size after
//! the audio/video tag header (what ffprobe calls the packet size; the
//! whole tag body for script tags). A bad file ends with a message on
//! stderr and exit code 1.

use std::process::ExitCode;

use rts::flv::bytes::BytesMut;
use rts::flv::{AudioTagHeader, Demuxer, ScriptData, Tag, TagType, VideoTagHeader};

fn line(tag: &Tag) -> Result<String, rts::flv::Error> {
    let ts = tag.timestamp;
    Ok(match tag.tag_type {
        TagType::Video => {
            let (h, payload) = VideoTagHeader::parse(&tag.data)?;
            format!(
                "{ts} video {} {} {} ct={} size={}",
                video_codec(&h),
                format!("{:?}", h.frame_type).to_lowercase(),
                format!("{:?}", h.packet_type).to_lowercase(),
                h.composition_time,
                payload.len()
            )
        }
        TagType::Audio => {
            let (h, payload) = AudioTagHeader::parse(&tag.data)?;
            let codec = match h.codec.fourcc().filter(|_| h.enhanced) {
                Some(f) => f.to_string(),
                None => format!("{:?}", h.codec).to_lowercase(),
            };
            format!(
                "{ts} audio {codec} - {} ct=0 size={}",
                format!("{:?}", h.packet_type).to_lowercase(),
                payload.len()
            )
        }
        TagType::Script => {
            let name = ScriptData::parse(&tag.data)
                .map(|s| s.name)
                .unwrap_or_else(|e| format!("(unreadable: {e})"));
            format!("{ts} script {name} - - ct=0 size={}", tag.data.len())
        }
        TagType::Other(t) => format!("{ts} type{t} - - - ct=0 size={}", tag.data.len()),
    })
}

fn video_codec(h: &VideoTagHeader) -> String {
    match h.codec.fourcc().filter(|_| h.enhanced) {
        Some(f) => f.to_string(),
        None => format!("{:?}", h.codec).to_lowercase(),
    }
}

fn run(path: &str) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut buf = BytesMut::from(&data[..]);
    let mut demuxer = Demuxer::new();
    let mut out = String::new();
    let mut index = 0usize;
    loop {
        let tag = match demuxer.decode_eof(&mut buf) {
            Ok(Some(tag)) => tag,
            Ok(None) => break,
            Err(e) => {
                print!("{out}");
                let at = data.len() - buf.len();
                return Err(format!("{path}: {e} (near byte {at})"));
            }
        };
        index += 1;
        match line(&tag) {
            Ok(l) => {
                out.push_str(&l);
                out.push('\n');
            }
            Err(e) => {
                print!("{out}");
                return Err(format!("{path}: tag {index}: {e}"));
            }
        }
    }
    print!("{out}");
    if demuxer.header().is_none() {
        return Err(format!("{path}: not an flv file: shorter than the header"));
    }
    if buf.len() > 4 {
        return Err(format!(
            "{path}: file ends inside a tag ({} bytes left over)",
            buf.len()
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("usage: flv-dump FILE");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flv-dump: {e}");
            ExitCode::FAILURE
        }
    }
}
