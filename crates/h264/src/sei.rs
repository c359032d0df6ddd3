//! Supplemental enhancement information (H.264 7.3.2.3 and D.1):
//! `sei_message()` parsing and building, with `user_data_unregistered`
//! (D.1.7, payload type 5: a 16-byte UUID and free bytes).

use crate::Error;
use crate::nal::{escape, unescape};

/// `payloadType` of `user_data_unregistered`.
pub const USER_DATA_UNREGISTERED: u32 = 5;

/// Largest SEI payload this crate builds or accepts (a bounded buffer).
pub const MAX_PAYLOAD: usize = 1 << 20;

/// One SEI message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeiMessage {
    /// `payloadType`.
    pub payload_type: u32,
    /// The payload bytes (RBSP, no emulation prevention).
    pub payload: Vec<u8>,
}

impl SeiMessage {
    /// A `user_data_unregistered` message.
    pub fn user_data_unregistered(uuid: [u8; 16], data: &[u8]) -> Self {
        let mut payload = Vec::with_capacity(data.len().saturating_add(16));
        payload.extend_from_slice(&uuid);
        payload.extend_from_slice(data);
        Self {
            payload_type: USER_DATA_UNREGISTERED,
            payload,
        }
    }

    /// `(uuid_iso_iec_11578, user_data_payload_byte[])` when this is a
    /// `user_data_unregistered` message of at least 16 bytes.
    pub fn as_user_data_unregistered(&self) -> Option<([u8; 16], &[u8])> {
        if self.payload_type != USER_DATA_UNREGISTERED {
            return None;
        }
        let uuid = self.payload.get(..16)?.try_into().ok()?;
        Some((uuid, self.payload.get(16..)?))
    }
}

/// UUID of the rts wall-clock SEI (`user_data_unregistered`): the 16 ASCII
/// bytes `rts-wallclock-v1`. The payload after it is 8 bytes, a big-endian
/// `u64` of microseconds since the Unix epoch (UTC) at capture or send time.
/// A contract shared with the web player and `rts-probe`.
pub const WALLCLOCK_UUID: [u8; 16] = *b"rts-wallclock-v1";

/// Builds an SEI NAL unit (header `0x06` included, emulation prevention
/// applied) carrying one wall-clock `user_data_unregistered` message:
/// [`WALLCLOCK_UUID`] then `micros` as 8 bytes big-endian.
pub fn build_wallclock(micros: u64) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(27);
    rbsp.push(USER_DATA_UNREGISTERED as u8);
    rbsp.push(24);
    rbsp.extend_from_slice(&WALLCLOCK_UUID);
    rbsp.extend_from_slice(&micros.to_be_bytes());
    rbsp.push(0x80);
    let mut nal = vec![0x06];
    nal.extend(escape(&rbsp));
    nal
}

/// The wall-clock time (microseconds since the Unix epoch) of the first
/// [`WALLCLOCK_UUID`] message in an SEI NAL unit (header byte included),
/// or `None` when `nal` is not an SEI, is malformed, or carries none.
pub fn parse_wallclock(nal: &[u8]) -> Option<u64> {
    if nal.first().map(|b| b & 0x1f) != Some(6) {
        return None;
    }
    parse(nal).ok()?.iter().find_map(|m| {
        let (uuid, data) = m.as_user_data_unregistered()?;
        if uuid != WALLCLOCK_UUID {
            return None;
        }
        Some(u64::from_be_bytes(data.get(..8)?.try_into().ok()?))
    })
}

/// Parses the messages of an SEI NAL unit (header byte included, emulation
/// prevention still present).
pub fn parse(nal: &[u8]) -> Result<Vec<SeiMessage>, Error> {
    let rbsp = unescape(nal.get(1..).ok_or(Error::UnexpectedEnd)?);
    let mut rest: &[u8] = &rbsp;
    let mut out = Vec::new();
    // sei_rbsp(): messages while more_rbsp_data(); the trailing byte is 0x80.
    while rest.first().is_some_and(|&b| b != 0x80) || rest.len() > 1 {
        let payload_type = read_ff_coded(&mut rest)?;
        let size = read_ff_coded(&mut rest)?;
        let size = usize::try_from(size).map_err(|_| Error::Invalid("sei payload size"))?;
        if size > MAX_PAYLOAD {
            return Err(Error::Invalid("sei payload larger than 1 MiB"));
        }
        let payload = rest.get(..size).ok_or(Error::UnexpectedEnd)?.to_vec();
        rest = rest.get(size..).unwrap_or_default();
        out.push(SeiMessage {
            payload_type,
            payload,
        });
    }
    Ok(out)
}

/// `ff_byte` runs then a last byte (7.3.2.3.1).
fn read_ff_coded(rest: &mut &[u8]) -> Result<u32, Error> {
    let mut v = 0u32;
    loop {
        let (&b, tail) = rest.split_first().ok_or(Error::UnexpectedEnd)?;
        *rest = tail;
        v = v
            .checked_add(u32::from(b))
            .ok_or(Error::Invalid("sei type or size overflow"))?;
        if b != 0xff {
            return Ok(v);
        }
    }
}

/// Builds an SEI NAL unit (header `0x06`, emulation prevention applied)
/// carrying `messages`. Payloads above [`MAX_PAYLOAD`] are refused.
pub fn build(messages: &[SeiMessage]) -> Result<Vec<u8>, Error> {
    let mut rbsp = Vec::new();
    for m in messages {
        if m.payload.len() > MAX_PAYLOAD {
            return Err(Error::Invalid("sei payload larger than 1 MiB"));
        }
        write_ff_coded(&mut rbsp, m.payload_type as usize);
        write_ff_coded(&mut rbsp, m.payload.len());
        rbsp.extend_from_slice(&m.payload);
    }
    rbsp.push(0x80);
    let mut nal = vec![0x06];
    nal.extend(escape(&rbsp));
    Ok(nal)
}

fn write_ff_coded(out: &mut Vec<u8>, mut v: usize) {
    while v >= 255 {
        out.push(0xff);
        v = v.saturating_sub(255);
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x264_version_sei() {
        // x264 writes its version string as user_data_unregistered with this UUID.
        let uuid: [u8; 16] = hex::decode("dc45e9bde6d948b7962cd820d923eeef")
            .unwrap()
            .try_into()
            .unwrap();
        let text = b"x264 - core 164 - H.264/MPEG-4 AVC codec";
        let nal = build(&[SeiMessage::user_data_unregistered(uuid, text)]).unwrap();
        assert_eq!(nal[..3], [0x06, 0x05, 56]);
        let parsed = parse(&nal).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(
            parsed[0].as_user_data_unregistered(),
            Some((uuid, &text[..]))
        );
    }

    #[test]
    fn round_trip_large_types_sizes_and_zeros() {
        let msgs = vec![
            SeiMessage {
                payload_type: 300,
                payload: vec![0; 600],
            },
            SeiMessage::user_data_unregistered([0; 16], &[0, 0, 1, 0, 0, 3]),
        ];
        let nal = build(&msgs).unwrap();
        assert!(!nal.windows(3).any(|w| w == [0, 0, 1]));
        assert_eq!(parse(&nal).unwrap(), msgs);
        assert!(parse(&nal[..nal.len() - 3]).is_err());
        assert!(parse(&[6, 0xff, 0xff]).is_err());
    }

    #[test]
    fn wallclock_round_trip() {
        for micros in [
            0u64,
            1,
            1_764_000_000_123_456,
            0x0000_0300_0001_0000,
            u64::MAX,
        ] {
            let nal = build_wallclock(micros);
            assert_eq!(nal[0], 0x06);
            assert_eq!(parse_wallclock(&nal), Some(micros), "{micros}");
            assert!(!nal.windows(3).any(|w| w == [0, 0, 1] || w == [0, 0, 0]));
        }
        // Same bytes as the generic builder.
        let generic = build(&[SeiMessage::user_data_unregistered(
            WALLCLOCK_UUID,
            &42u64.to_be_bytes(),
        )])
        .unwrap();
        assert_eq!(build_wallclock(42), generic);
        assert_eq!(&build_wallclock(42)[1..3], &[5, 24]);
        assert_eq!(&build_wallclock(42)[3..19], b"rts-wallclock-v1");
    }

    #[test]
    fn wallclock_rejects_others() {
        // Another UUID, a short payload, a non-SEI NAL, garbage.
        let other = build(&[SeiMessage::user_data_unregistered([1; 16], &[0; 8])]).unwrap();
        assert_eq!(parse_wallclock(&other), None);
        let short = build(&[SeiMessage::user_data_unregistered(WALLCLOCK_UUID, &[0; 7])]).unwrap();
        assert_eq!(parse_wallclock(&short), None);
        let mut not_sei = build_wallclock(7);
        not_sei[0] = 0x65;
        assert_eq!(parse_wallclock(&not_sei), None);
        assert_eq!(parse_wallclock(&[]), None);
        assert_eq!(parse_wallclock(&[6, 5, 24, 1]), None);
        // Found after another message in the same NAL.
        let both = build(&[
            SeiMessage::user_data_unregistered([1; 16], b"x"),
            SeiMessage::user_data_unregistered(WALLCLOCK_UUID, &9u64.to_be_bytes()),
        ])
        .unwrap();
        assert_eq!(parse_wallclock(&both), Some(9));
    }
}
