//! Any bytes as C0+C1+C2 (server) and S0+S1+S2 (client), in splits chosen
//! by the first byte: never panics; the server answers exactly S0+S1+S2
//! once C0+C1 is in; a finished handshake consumed exactly its packets and
//! left the rest in the buffer; anything but version 3 is an error.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rts_rtmp::Error;
use rts_rtmp::handshake::{Client, Kind, PACKET_LEN, Server};

fn feed(
    data: &[u8],
    step: usize,
    mut f: impl FnMut(&mut BytesMut) -> Result<bool, Error>,
) -> Option<(usize, usize)> {
    let mut input = BytesMut::new();
    let mut given = 0;
    for piece in data.chunks(step) {
        input.extend_from_slice(piece);
        given += piece.len();
        match f(&mut input) {
            Ok(true) => return Some((given, input.len())),
            Ok(false) => {}
            Err(Error::UnsupportedVersion(v)) => {
                assert_ne!(v, 3);
                assert_eq!(data[0], v);
                return None;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(first % 64) * 97 + 1;

    let mut server = Server::new(1, &[0x5a; 1528]);
    let mut out = BytesMut::new();
    let done = feed(data, step, |input| server.handle_input(input, &mut out));
    if data.len() > PACKET_LEN && data.first() == Some(&3) {
        assert_eq!(out.len(), 1 + 2 * PACKET_LEN);
        assert_eq!(out[0], 3);
    } else {
        assert!(out.is_empty());
    }
    if let Some((given, left)) = done {
        assert_eq!(given - left, 1 + 2 * PACKET_LEN);
        assert!(server.is_done());
    }

    let mut client = Client::new(
        if first & 1 == 0 {
            Kind::Plain
        } else {
            Kind::Digest
        },
        2,
        &[0xa5; 1528],
    );
    let mut out = BytesMut::new();
    client.start(&mut out);
    assert_eq!(out.len(), 1 + PACKET_LEN);
    if let Some((given, left)) = feed(data, step, |input| client.handle_input(input, &mut out)) {
        assert_eq!(given - left, 1 + 2 * PACKET_LEN);
        assert_eq!(out.len(), 1 + 2 * PACKET_LEN);
    }
});
