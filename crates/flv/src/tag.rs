//! FLV tags (FLV specification E.4.1 "FLV Tag") and the file body
//! (E.3: PreviousTagSize0, tag 1, PreviousTagSize1, ...): an incremental
//! [`Demuxer`] and a [`Muxer`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Error;
use crate::header::{HEADER_LEN, Header};

/// Size of a tag header (type, data size, timestamp, extension, stream id).
pub const TAG_HEADER_LEN: usize = 11;
/// Size of a PreviousTagSize field.
pub const PREVIOUS_TAG_SIZE_LEN: usize = 4;
/// Largest tag data size the 24-bit DataSize field can hold.
pub const MAX_DATA_SIZE: usize = 0x00ff_ffff;

/// The TagType field (5 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagType {
    /// 8: audio.
    Audio,
    /// 9: video.
    Video,
    /// 18: script data (AMF0).
    Script,
    /// Any other value, passed through.
    Other(u8),
}

impl TagType {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            TagType::Audio => 8,
            TagType::Video => 9,
            TagType::Script => 18,
            TagType::Other(c) => c & 0x1f,
        }
    }

    /// From the 5-bit wire value.
    pub fn from_code(code: u8) -> Self {
        match code & 0x1f {
            8 => TagType::Audio,
            9 => TagType::Video,
            18 => TagType::Script,
            c => TagType::Other(c),
        }
    }
}

/// One FLV tag: header fields plus the body (zero-copy slice of the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Audio, video or script.
    pub tag_type: TagType,
    /// The Filter bit (encrypted content); almost always false.
    pub filter: bool,
    /// Milliseconds: Timestamp plus TimestampExtended as the upper 8 bits.
    pub timestamp: u32,
    /// StreamID, 24 bits, always 0 in files.
    pub stream_id: u32,
    /// The tag body (audio/video tag header and payload, or script data).
    pub data: Bytes,
}

impl Tag {
    /// A tag with filter off and stream id 0.
    pub fn new(tag_type: TagType, timestamp: u32, data: Bytes) -> Self {
        Tag {
            tag_type,
            filter: false,
            timestamp,
            stream_id: 0,
            data,
        }
    }

    /// Bytes this tag takes in a file: header, data and PreviousTagSize.
    pub fn encoded_len(&self) -> usize {
        TAG_HEADER_LEN
            .saturating_add(self.data.len())
            .saturating_add(PREVIOUS_TAG_SIZE_LEN)
    }

    /// Writes the 11-byte tag header, the data and the PreviousTagSize that
    /// follows it.
    ///
    /// Fails with [`Error::TagTooLarge`] if the data exceeds 16 MiB - 1.
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<(), Error> {
        self.encode_header(dst)?;
        dst.put_slice(&self.data);
        dst.put_u32(self.previous_tag_size());
        Ok(())
    }

    /// Writes only the 11-byte tag header (E.4.1), for a writer that sends
    /// [`Tag::data`] as its own shared buffer (zero copy) and then
    /// [`Tag::previous_tag_size`]. A body over 16 MiB is
    /// [`Error::TagTooLarge`].
    pub fn encode_header(&self, dst: &mut impl BufMut) -> Result<(), Error> {
        let size = self.data.len();
        if size > MAX_DATA_SIZE {
            return Err(Error::TagTooLarge {
                size,
                max: MAX_DATA_SIZE,
            });
        }
        dst.put_u8(u8::from(self.filter) << 5 | self.tag_type.code());
        // invariant: size <= 0xffffff, checked above.
        dst.put_uint(size as u64, 3);
        dst.put_uint(u64::from(self.timestamp & 0x00ff_ffff), 3);
        dst.put_u8((self.timestamp >> 24) as u8);
        dst.put_uint(u64::from(self.stream_id & 0x00ff_ffff), 3);
        Ok(())
    }

    /// The PreviousTagSize field that follows this tag: 11 + the body size.
    pub fn previous_tag_size(&self) -> u32 {
        u32::try_from(self.data.len())
            .unwrap_or(u32::MAX)
            .saturating_add(TAG_HEADER_LEN as u32)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the 9-byte file header.
    Header,
    /// Skipping the rest of a header with a data offset above 9.
    Skip(usize),
    /// Waiting for PreviousTagSize0.
    FirstPreviousTagSize,
    /// Tags, each followed by its PreviousTagSize.
    Tags,
}

/// Incremental FLV demuxer: feed bytes as they arrive, get whole tags out.
///
/// Gives the same tags for any split of the input. Each tag consumes
/// `11 + data size + 4` bytes; the file header and PreviousTagSize0 consume
/// `data_offset + 4`.
///
/// ```
/// use bytes::BytesMut;
/// use rts_flv::{Demuxer, Header, Muxer, Tag, TagType};
///
/// let mut file = BytesMut::new();
/// let mut mux = Muxer::new(Header::new(true, true));
/// mux.encode(&Tag::new(TagType::Video, 40, vec![0x17, 1, 0, 0, 0].into()), &mut file)?;
///
/// let mut demux = Demuxer::new();
/// let mut input = BytesMut::new();
/// let mut tags = Vec::new();
/// for chunk in file.chunks(3) {          // bytes arriving from a socket
///     input.extend_from_slice(chunk);
///     while let Some(tag) = demux.decode(&mut input)? {
///         tags.push(tag);
///     }
/// }
/// assert_eq!(tags.len(), 1);
/// assert_eq!(tags[0].timestamp, 40);
/// assert_eq!(demux.header(), Some(&Header::new(true, true)));
/// # Ok::<(), rts_flv::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Demuxer {
    state: State,
    header: Option<Header>,
    max_tag_size: usize,
    strict: bool,
    last_tag_size: u32,
}

impl Default for Demuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl Demuxer {
    /// A demuxer for a whole file or HTTP-FLV stream (starting with `FLV`).
    pub fn new() -> Self {
        Demuxer {
            state: State::Header,
            header: None,
            max_tag_size: MAX_DATA_SIZE,
            strict: false,
            last_tag_size: 0,
        }
    }

    /// A demuxer for a bare sequence of tags, each followed by its
    /// PreviousTagSize (the body of an RTMP aggregate message).
    pub fn tags_only() -> Self {
        Demuxer {
            state: State::Tags,
            ..Self::new()
        }
    }

    /// Refuse tags whose data is larger than `max` bytes (default and upper
    /// bound: 16 MiB - 1, what the 24-bit field allows).
    pub fn with_max_tag_size(mut self, max: usize) -> Self {
        self.max_tag_size = max.min(MAX_DATA_SIZE);
        self
    }

    /// Check every PreviousTagSize against the tag before it (default off:
    /// players, ffmpeg included, ignore the field and files in the wild
    /// get it wrong).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The file header, once read.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The next tag, `Ok(None)` if `src` does not hold a whole one yet.
    ///
    /// Consumed bytes are removed from `src`; the tag's data is a slice of it.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Tag>, Error> {
        loop {
            match self.state {
                State::Header => {
                    let Some(h) = Header::parse(src)? else {
                        return Ok(None);
                    };
                    src.advance(HEADER_LEN);
                    self.header = Some(h);
                    let extra = (h.data_offset as usize).saturating_sub(HEADER_LEN);
                    self.state = State::Skip(extra);
                }
                State::Skip(n) => {
                    let k = n.min(src.len());
                    src.advance(k);
                    let left = n.saturating_sub(k);
                    if left > 0 {
                        self.state = State::Skip(left);
                        return Ok(None);
                    }
                    self.state = State::FirstPreviousTagSize;
                }
                State::FirstPreviousTagSize => {
                    if src.len() < PREVIOUS_TAG_SIZE_LEN {
                        return Ok(None);
                    }
                    let found = src.get_u32();
                    if self.strict && found != 0 {
                        return Err(Error::PreviousTagSize { expected: 0, found });
                    }
                    self.state = State::Tags;
                }
                State::Tags => return self.tag(src, true),
            }
        }
    }

    /// At the end of the input: like [`decode`](Self::decode), but also
    /// accepts a last tag whose PreviousTagSize is missing (a file cut
    /// short). Call it until it returns `Ok(None)`; bytes left in `src`
    /// after that are an incomplete tag.
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Tag>, Error> {
        if self.state != State::Tags {
            return self.decode(src);
        }
        self.tag(src, false)
    }

    fn tag(&mut self, src: &mut BytesMut, need_trailer: bool) -> Result<Option<Tag>, Error> {
        let Some(head) = src.get(..TAG_HEADER_LEN) else {
            return Ok(None);
        };
        let mut h = head;
        let type_byte = h.get_u8();
        let size = h.get_uint(3) as usize;
        let ts_low = h.get_uint(3) as u32;
        let ts_high = u32::from(h.get_u8());
        let stream_id = h.get_uint(3) as u32;
        if size > self.max_tag_size {
            return Err(Error::TagTooLarge {
                size,
                max: self.max_tag_size,
            });
        }
        // invariant: size <= 0xffffff, so these sums cannot overflow.
        let body_end = TAG_HEADER_LEN.saturating_add(size);
        let total = body_end.saturating_add(PREVIOUS_TAG_SIZE_LEN);
        if src.len() < total {
            if !need_trailer && src.len() >= body_end {
                // Truncated file: the last PreviousTagSize is missing.
            } else {
                src.reserve(total.saturating_sub(src.len()));
                return Ok(None);
            }
        }
        src.advance(TAG_HEADER_LEN);
        let data = src.split_to(size).freeze();
        let tag_size = (size as u32).saturating_add(TAG_HEADER_LEN as u32);
        if src.len() >= PREVIOUS_TAG_SIZE_LEN {
            let found = src.get_u32();
            if self.strict && found != tag_size {
                return Err(Error::PreviousTagSize {
                    expected: tag_size,
                    found,
                });
            }
        }
        self.last_tag_size = tag_size;
        Ok(Some(Tag {
            tag_type: TagType::from_code(type_byte),
            filter: type_byte & 0x20 != 0,
            timestamp: ts_high << 24 | ts_low,
            stream_id,
            data,
        }))
    }
}

/// FLV muxer: writes the file header (once) then tags.
#[derive(Debug, Clone)]
pub struct Muxer {
    pending_header: Option<Header>,
}

impl Muxer {
    /// A muxer that writes `header` and PreviousTagSize0 before the first tag.
    pub fn new(header: Header) -> Self {
        Muxer {
            pending_header: Some(header),
        }
    }

    /// A muxer for bare tags (RTMP aggregate messages).
    pub fn tags_only() -> Self {
        Muxer {
            pending_header: None,
        }
    }

    /// Writes the header now if not done yet (HTTP-FLV sends it before any
    /// tag is available).
    pub fn write_header(&mut self, dst: &mut impl BufMut) {
        if let Some(h) = self.pending_header.take() {
            h.encode(dst);
            dst.put_u32(0);
        }
    }

    /// Appends `tag` and its PreviousTagSize (after the header, on the first
    /// call).
    pub fn encode(&mut self, tag: &Tag, dst: &mut impl BufMut) -> Result<(), Error> {
        if tag.data.len() > MAX_DATA_SIZE {
            return Err(Error::TagTooLarge {
                size: tag.data.len(),
                max: MAX_DATA_SIZE,
            });
        }
        self.write_header(dst);
        tag.encode(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_tags() -> Vec<Tag> {
        vec![
            Tag::new(
                TagType::Script,
                0,
                Bytes::from_static(b"\x02\x00\x0aonMetaData\x05"),
            ),
            Tag::new(
                TagType::Video,
                0,
                Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]),
            ),
            Tag::new(TagType::Audio, 23, Bytes::from_static(&[0xaf, 1, 9, 9])),
            Tag {
                tag_type: TagType::Other(7),
                filter: true,
                timestamp: 0x1234_5678,
                stream_id: 0x00ab_cdef,
                data: Bytes::new(),
            },
        ]
    }

    fn file(tags: &[Tag]) -> BytesMut {
        let mut out = BytesMut::new();
        let mut m = Muxer::new(Header::new(true, true));
        for t in tags {
            m.encode(t, &mut out).unwrap();
        }
        out
    }

    fn demux_in_pieces(input: &[u8], cuts: &[usize]) -> Result<(Vec<Tag>, usize), Error> {
        demux_with(Demuxer::new().strict(true), input, cuts)
    }

    fn demux_with(
        mut d: Demuxer,
        input: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<Tag>, usize), Error> {
        let mut buf = BytesMut::new();
        let mut tags = Vec::new();
        let mut start = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        points.push(input.len());
        for p in points {
            buf.extend_from_slice(&input[start..p]);
            start = p;
            while let Some(t) = d.decode(&mut buf)? {
                tags.push(t);
            }
        }
        Ok((tags, buf.len()))
    }

    #[test]
    fn layout_and_extended_timestamp() {
        let tags = sample_tags();
        let f = file(&tags);
        assert_eq!(&f[..13], b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
        // Second tag: video, size 7, ts 0, stream 0, then PreviousTagSize 18.
        let script_len = 11 + tags[0].data.len() + 4;
        assert_eq!(
            &f[13 + script_len..13 + script_len + 11],
            &[9, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
        );
        // Last tag: filter bit, ts low 24 bits then the high 8 bits.
        let last = &f[f.len() - 15..];
        assert_eq!(
            last,
            &[
                0x27, 0, 0, 0, 0x34, 0x56, 0x78, 0x12, 0xab, 0xcd, 0xef, 0, 0, 0, 11
            ]
        );
        let (out, rest) = demux_in_pieces(&f, &[]).unwrap();
        assert_eq!(out, tags);
        assert_eq!(rest, 0);
    }

    #[test]
    fn size_limit_and_strict_mode() {
        let f = file(&sample_tags());
        let mut d = Demuxer::new().with_max_tag_size(4);
        let mut b = BytesMut::from(&f[..]);
        assert!(matches!(
            d.decode(&mut b),
            Err(Error::TagTooLarge { size: 14, max: 4 })
        ));
        let mut bad = f.clone();
        let at = 13 + 11 + sample_tags()[0].data.len();
        bad[at + 3] ^= 1;
        assert!(matches!(
            demux_in_pieces(&bad, &[]),
            Err(Error::PreviousTagSize { .. })
        ));
        // Lenient by default.
        let mut d = Demuxer::new();
        let mut b = BytesMut::from(&bad[..]);
        let mut n = 0;
        while d.decode(&mut b).unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn truncated_last_tag_at_eof() {
        let tags = sample_tags();
        let f = file(&tags[..2]);
        let mut b = BytesMut::from(&f[..f.len() - 4]);
        let mut d = Demuxer::new();
        assert!(d.decode(&mut b).unwrap().is_some());
        assert_eq!(d.decode(&mut b).unwrap(), None);
        assert_eq!(d.decode_eof(&mut b).unwrap().as_ref(), Some(&tags[1]));
        assert_eq!(d.decode_eof(&mut b).unwrap(), None);
        assert!(b.is_empty());
    }

    #[test]
    fn payloads_are_slices_of_the_input() {
        let f = file(&sample_tags());
        let mut buf = BytesMut::with_capacity(f.len());
        buf.extend_from_slice(&f);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let mut d = Demuxer::new();
        while let Some(t) = d.decode(&mut buf).unwrap() {
            if !t.data.is_empty() {
                assert!(range.contains(&(t.data.as_ptr() as usize)), "copied");
                if t.tag_type == TagType::Video {
                    let (_, payload) = crate::VideoTagHeader::parse(&t.data).unwrap();
                    assert!(range.contains(&(payload.as_ptr() as usize)));
                }
            }
        }
    }

    #[test]
    fn tags_only() {
        let tags = sample_tags();
        let mut b = BytesMut::new();
        let mut m = Muxer::tags_only();
        for t in &tags {
            m.encode(t, &mut b).unwrap();
        }
        let mut d = Demuxer::tags_only();
        let mut out = vec![];
        while let Some(t) = d.decode(&mut b).unwrap() {
            out.push(t);
        }
        assert_eq!(out, tags);
    }

    #[test]
    fn oversized_data_is_a_caller_error() {
        let t = Tag::new(TagType::Video, 0, Bytes::from(vec![0u8; MAX_DATA_SIZE + 1]));
        let mut b = BytesMut::new();
        assert!(matches!(
            Muxer::new(Header::new(false, true)).encode(&t, &mut b),
            Err(Error::TagTooLarge { .. })
        ));
        assert!(b.is_empty());
    }

    fn arb_tag() -> impl Strategy<Value = Tag> {
        (
            prop_oneof![Just(8u8), Just(9), Just(18), 0u8..32],
            any::<bool>(),
            any::<u32>(),
            0u32..0x0100_0000,
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(t, filter, timestamp, stream_id, data)| Tag {
                tag_type: TagType::from_code(t),
                filter,
                timestamp,
                stream_id,
                data: data.into(),
            })
    }

    proptest! {
        #[test]
        fn header_data_and_size_in_pieces_equal_encode(tag in arb_tag()) {
            let mut whole = Vec::new();
            tag.encode(&mut whole).unwrap();
            let mut pieces = Vec::new();
            tag.encode_header(&mut pieces).unwrap();
            prop_assert_eq!(pieces.len(), TAG_HEADER_LEN);
            pieces.extend_from_slice(&tag.data);
            pieces.extend_from_slice(&tag.previous_tag_size().to_be_bytes());
            prop_assert_eq!(pieces, whole);
        }

        #[test]
        fn any_split_gives_the_same_tags(
            tags in prop::collection::vec(arb_tag(), 0..8),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let f = file(&tags);
            let (out, rest) = demux_in_pieces(&f, &cuts).unwrap();
            prop_assert_eq!(out, tags);
            prop_assert_eq!(rest, 0);
        }

        #[test]
        fn arbitrary_bytes_any_split(
            tail in prop::collection::vec(any::<u8>(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut input = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
            input.extend_from_slice(&tail);
            let whole = demux_with(Demuxer::new(), &input, &[]);
            let split = demux_with(Demuxer::new(), &input, &cuts);
            match (whole, split) {
                (Ok(a), Ok(b)) => {
                    let consumed: usize = 13 + a.0.iter().map(Tag::encoded_len).sum::<usize>();
                    prop_assert_eq!(consumed + a.1, input.len());
                    prop_assert_eq!(a, b);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
            }
        }
    }
}
