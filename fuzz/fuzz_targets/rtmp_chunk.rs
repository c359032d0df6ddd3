//! Any bytes as a chunk stream, in splits chosen by the first byte: the
//! decoder never panics, every consumed byte is accounted for, no decoded
//! payload exceeds the limit, and what it decodes re-encodes and decodes
//! back to the same messages (any chunk size). The same bytes after a
//! handshake into `ServerSession` end cleanly or with an error event.
#![no_main]

use std::time::Instant;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rts_rtmp::session::{Config, ServerEvent, ServerSession};
use rts_rtmp::{Decoder, Encoder, Limits, Message};

const LIMITS: Limits = Limits {
    max_message_len: 1 << 16,
    max_chunk_streams: 16,
    max_buffered: 1 << 18,
};

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(first % 32) * 37 + 1;

    let mut dec = Decoder::new(LIMITS);
    let mut input = BytesMut::new();
    let mut given = 0u64;
    let mut msgs: Vec<Message> = Vec::new();
    'outer: for piece in data.chunks(step) {
        input.extend_from_slice(piece);
        given += piece.len() as u64;
        loop {
            match dec.decode(&mut input) {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= LIMITS.max_message_len as usize);
                    msgs.push(m);
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
            assert_eq!(dec.bytes_consumed() + input.len() as u64, given);
        }
        assert_eq!(dec.bytes_consumed() + input.len() as u64, given);
        assert!(dec.bytes_buffered() <= LIMITS.max_buffered);
    }
    let payload_total: usize = msgs.iter().map(|m| m.payload.len()).sum();
    assert!(payload_total as u64 <= dec.bytes_consumed());

    // Round trip of whatever was decoded. Set Chunk Size and Abort change
    // the decoder's state, so keep only valid chunk sizes and no aborts.
    let keep: Vec<Message> = msgs
        .into_iter()
        .filter(|m| match m.type_id {
            1 => m.payload.len() == 4,
            2 => false,
            _ => true,
        })
        .collect();
    let mut enc = Encoder::new();
    let mut wire = BytesMut::new();
    for m in &keep {
        enc.encode(m, &mut wire);
    }
    let mut dec = Decoder::new(LIMITS);
    for m in &keep {
        let got = dec
            .decode(&mut wire)
            .expect("re-encoded stream decodes")
            .expect("complete");
        assert_eq!(&got, m);
    }
    assert!(wire.is_empty());

    let mut session = ServerSession::new(
        Config {
            limits: LIMITS,
            ..Config::default()
        },
        &[1; 1528],
    );
    let mut hs = vec![3u8];
    hs.extend_from_slice(&[0; 3072]);
    let now = Instant::now();
    session.handle_input(now, &hs);
    for piece in data.chunks(step) {
        session.handle_input(now, piece);
        while session.poll_transmit().is_some() {}
        while let Some(ev) = session.poll_event() {
            match ev {
                ServerEvent::ConnectRequested { .. } => session.accept_connect().unwrap(),
                ServerEvent::PublishRequested { stream_id, .. } => {
                    session.accept_publish(stream_id).unwrap()
                }
                ServerEvent::PlayRequested { stream_id, .. } => {
                    session.accept_play(stream_id).unwrap()
                }
                _ => {}
            }
        }
    }
});
