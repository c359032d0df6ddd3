//! Chunk stream decode and encode throughput, rts-rtmp against rml_rtmp on
//! the same bytes: 10 s of a 30 fps, 2.5 Mbit/s H.264-like video stream
//! (a 5x keyframe every 2 s) with 128 kbit/s AAC-like audio (44.1 kHz,
//! 1024-sample frames), at chunk sizes 128 and 4096.
//!
//! Decoding is fed in 64 KiB reads, as from a socket.
//!
//! `cargo bench -p rts-rtmp --bench chunk`

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rml_rtmp::chunk_io::{ChunkDeserializer, ChunkSerializer};
use rml_rtmp::messages::MessagePayload;
use rml_rtmp::time::RtmpTimestamp;
use rts_rtmp::message::Control;
use rts_rtmp::{Decoder, Encoder, Message};

/// The media messages: (csid, timestamp, type, payload).
fn mix() -> Vec<Message> {
    let video_bytes_per_frame = 2_500_000 / 8 / 30; // ~10.4 kB
    let audio_bytes_per_frame = 128_000 / 8 * 1024 / 44_100; // ~371 B
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = |n: usize| -> Bytes {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect::<Vec<u8>>()
            .into()
    };
    let mut msgs = Vec::new();
    let (mut v, mut a) = (0u32, 0u32);
    while v < 300 {
        let vt = v * 1000 / 30;
        let at = a * 1024 * 1000 / 44_100;
        if at <= vt {
            msgs.push(Message::new(6, at, 8, 1, noise(audio_bytes_per_frame)));
            a += 1;
        } else {
            // Keyframes 5x the mean, the other frames slightly under it.
            let size = if v % 60 == 0 {
                video_bytes_per_frame * 5
            } else {
                video_bytes_per_frame * 55 / 59
            };
            msgs.push(Message::new(7, vt, 9, 1, noise(size as usize)));
            v += 1;
        }
    }
    msgs
}

fn scs(chunk_size: u32) -> Message {
    Control::SetChunkSize(chunk_size).to_message()
}

fn encode_rts(msgs: &[Message], chunk_size: u32) -> BytesMut {
    let mut enc = Encoder::new();
    let mut out = BytesMut::with_capacity(4 << 20);
    enc.encode(&scs(chunk_size), &mut out);
    for m in msgs {
        enc.encode(m, &mut out);
    }
    out
}

fn rml_payload(m: &Message) -> MessagePayload {
    MessagePayload {
        timestamp: RtmpTimestamp::new(m.timestamp),
        type_id: m.type_id,
        message_stream_id: m.stream_id,
        data: m.payload.clone(),
    }
}

fn encode_rml(msgs: &[MessagePayload], chunk_size: u32) -> Vec<u8> {
    let mut ser = ChunkSerializer::new();
    let mut out = Vec::with_capacity(4 << 20);
    out.extend_from_slice(
        &ser.set_max_chunk_size(chunk_size, RtmpTimestamp::new(0))
            .unwrap()
            .bytes,
    );
    for m in msgs {
        out.extend_from_slice(&ser.serialize(m, false, false).unwrap().bytes);
    }
    out
}

/// Socket-sized reads, as a server gets them.
const READ: usize = 64 * 1024;

fn decode_rts(wire: &Bytes) -> usize {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::with_capacity(2 * READ);
    let mut n = 0;
    for read in wire.chunks(READ) {
        buf.extend_from_slice(read);
        while let Some(m) = dec.decode(&mut buf).unwrap() {
            n += m.payload.len();
        }
    }
    n
}

fn decode_rml(wire: &[u8]) -> usize {
    let mut dec = ChunkDeserializer::new();
    let mut n = 0;
    for read in wire.chunks(READ) {
        let mut input = read;
        while let Some(m) = dec.get_next_message(input).unwrap() {
            input = &[];
            if m.type_id == 1 {
                let size = u32::from_be_bytes(m.data[..4].try_into().unwrap());
                dec.set_max_chunk_size(size as usize).unwrap();
            }
            n += m.data.len();
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let msgs = mix();
    let rml_msgs: Vec<MessagePayload> = msgs.iter().map(rml_payload).collect();
    let payload: usize = msgs.iter().map(|m| m.payload.len()).sum();
    for chunk_size in [128u32, 4096] {
        let wire = encode_rts(&msgs, chunk_size).freeze();
        // Same bytes for both decoders; both decoders agree on them.
        assert_eq!(decode_rts(&wire), payload + 4);
        assert_eq!(decode_rml(&wire), payload + 4);

        let mut g = c.benchmark_group(format!("chunk_decode_{chunk_size}"));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        g.sample_size(20);
        g.bench_function("rts_rtmp", |b| b.iter(|| decode_rts(black_box(&wire))));
        g.bench_function("rml_rtmp", |b| b.iter(|| decode_rml(black_box(&wire))));
        g.finish();

        let mut g = c.benchmark_group(format!("chunk_encode_{chunk_size}"));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        g.sample_size(20);
        g.bench_function("rts_rtmp", |b| {
            b.iter(|| encode_rts(black_box(&msgs), chunk_size).len())
        });
        g.bench_function("rml_rtmp", |b| {
            b.iter(|| encode_rml(black_box(&rml_msgs), chunk_size).len())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
