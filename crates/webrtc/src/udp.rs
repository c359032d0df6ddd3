//! Batched UDP sends for the fan-out: the one I/O helper of this crate (the
//! peer itself stays sans-IO). A viewer's datagrams of one frame go to one
//! address and, as the stream is packetized once into equal-size packets,
//! have one size except the last: one `sendmsg` with Linux UDP GSO
//! (`UDP_SEGMENT`) carries them all, instead of one `sendto` each. The
//! syscall, not SRTP, dominates the per-viewer cost (docs/PERFORMANCE.md,
//! docs/decisions/webrtc-send-batching.md).
//!
//! Sending goes through quinn-udp's safe API. Where GSO is missing (other
//! systems, or a device that answers EIO/EINVAL at the first GSO send),
//! [`BatchSender`] falls back to one datagram per `sendmsg`, resends what
//! the failed batch carried, and reports it once
//! ([`BatchSender::take_fallback_notice`]).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use bytes::BytesMut;
use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};

/// Most bytes one GSO send carries (the kernel caps a UDP datagram at
/// 65,507 bytes of payload; 64,000 keeps a margin).
pub const MAX_BATCH_BYTES: usize = 64_000;

/// The length of the run at the start of `datagrams` that one GSO send can
/// carry: same destination, every datagram as long as the first except the
/// last, which may be shorter; at most `max_segments` datagrams and
/// [`MAX_BATCH_BYTES`]. 0 only for an empty slice.
pub fn run_len(datagrams: &[(SocketAddr, BytesMut)], max_segments: usize) -> usize {
    let Some((dest, first)) = datagrams.first() else {
        return 0;
    };
    let size = first.len();
    let mut n = 1usize;
    let mut bytes = size;
    for (d, b) in datagrams.iter().skip(1) {
        if n >= max_segments || d != dest || b.len() > size || size == 0 {
            break;
        }
        let Some(total) = bytes.checked_add(b.len()) else {
            break;
        };
        if total > MAX_BATCH_BYTES {
            break;
        }
        bytes = total;
        n = n.saturating_add(1);
        if b.len() < size {
            break; // a shorter datagram ends a GSO batch
        }
    }
    n
}

/// Sends datagrams in GSO batches on one UDP socket.
#[derive(Debug)]
pub struct BatchSender {
    state: UdpSocketState,
    buf: Vec<u8>,
    notice: Option<String>,
    reported: bool,
}

impl BatchSender {
    /// Prepares `socket` (a std or tokio `UdpSocket`) for batched sends.
    pub fn new<S: AsFd>(socket: &S) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(socket))?;
        Ok(Self {
            state,
            buf: Vec::with_capacity(MAX_BATCH_BYTES),
            notice: None,
            reported: false,
        })
    }

    /// Datagrams one send may carry now (1: no GSO, or it fell back).
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends `datagrams` from the start, in order, batching runs
    /// ([`run_len`]). Returns how many were sent (at least 1 for a
    /// non-empty slice), or `WouldBlock` when the socket took none. Other
    /// send errors (unreachable destination, ...) count as sent, as a lost
    /// datagram would. A `WouldBlock` in the middle of a fallback resend
    /// may send a few datagrams twice (SRTP replay protection drops them).
    pub fn send<S: AsFd>(
        &mut self,
        socket: &S,
        datagrams: &[(SocketAddr, BytesMut)],
    ) -> io::Result<usize> {
        let mut sent = 0usize;
        while let Some(rest) = datagrams.get(sent..)
            && !rest.is_empty()
        {
            let segments = self.state.max_gso_segments();
            let n = run_len(rest, segments.max(1));
            let r = self.send_run(socket, rest.get(..n).unwrap_or_default(), segments);
            match r {
                Ok(()) => sent = sent.saturating_add(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    fn send_run<S: AsFd>(
        &mut self,
        socket: &S,
        run: &[(SocketAddr, BytesMut)],
        segments: usize,
    ) -> io::Result<()> {
        let Some((dest, first)) = run.first() else {
            return Ok(());
        };
        if run.len() == 1 {
            return self.send_one(socket, *dest, first);
        }
        self.buf.clear();
        for (_, b) in run {
            self.buf.extend_from_slice(b);
        }
        let transmit = Transmit {
            destination: *dest,
            ecn: None,
            contents: &self.buf,
            segment_size: Some(first.len()),
            src_ip: None,
        };
        let r = self.state.try_send(UdpSockRef::from(socket), &transmit);
        if r.is_ok() || self.state.max_gso_segments() >= segments {
            return Self::result(r);
        }
        {
            // quinn-udp saw EIO/EINVAL and turned GSO off: the batch was
            // not sent. Resend it one by one; report once.
            if !self.reported {
                self.notice = Some(format!(
                    "UDP GSO unavailable (send of {} segments to {dest} failed); \
                     sending one datagram per syscall",
                    run.len()
                ));
                self.reported = true;
            }
            for (d, b) in run {
                self.send_one(socket, *d, b)?;
            }
        }
        Ok(())
    }

    fn send_one<S: AsFd>(&mut self, socket: &S, dest: SocketAddr, b: &[u8]) -> io::Result<()> {
        let transmit = Transmit {
            destination: dest,
            ecn: None,
            contents: b,
            segment_size: None,
            src_ip: None,
        };
        Self::result(self.state.try_send(UdpSockRef::from(socket), &transmit))
    }

    /// `WouldBlock` goes to the caller (wait for writability); other send
    /// errors (an ICMP error queued for an old destination, a datagram too
    /// large) lose the datagram, as the network would, and are reported
    /// as sent. EIO/EINVAL of a GSO send are handled in `send_run`.
    fn result(r: io::Result<()>) -> io::Result<()> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(()),
        }
    }

    /// Once, after GSO failed at runtime: why the sender fell back to one
    /// datagram per send (for the caller to log).
    pub fn take_fallback_notice(&mut self) -> Option<String> {
        self.notice.take()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn d(port: u16, len: usize) -> (SocketAddr, BytesMut) {
        (
            SocketAddr::from(([127, 0, 0, 1], port)),
            BytesMut::from(&vec![port as u8; len][..]),
        )
    }

    #[test]
    fn runs_split_on_destination_size_and_limits() {
        let v = vec![d(1, 100), d(1, 100), d(1, 60), d(1, 100), d(2, 100)];
        assert_eq!(run_len(&v, 64), 3, "a shorter one ends the run");
        assert_eq!(run_len(&v[3..], 64), 1, "another destination");
        assert_eq!(run_len(&v, 2), 2, "segment limit");
        assert_eq!(run_len(&v, 1), 1);
        assert_eq!(run_len(&[], 64), 0);
        let longer = vec![d(1, 100), d(1, 200)];
        assert_eq!(run_len(&longer, 64), 1, "a longer one cannot follow");
        let big: Vec<_> = (0..64).map(|_| d(1, 1200)).collect();
        assert_eq!(run_len(&big, 64), MAX_BATCH_BYTES / 1200);
    }

    #[test]
    fn every_datagram_arrives_intact_in_order() {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx1 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx2 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx1.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        rx2.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let (a1, a2) = (rx1.local_addr().unwrap(), rx2.local_addr().unwrap());
        let mut out = Vec::new();
        for i in 0..9u8 {
            let len = if i == 8 { 300 } else { 1200 };
            out.push((a1, BytesMut::from(&vec![i; len][..])));
        }
        out.push((a2, BytesMut::from(&[42u8; 50][..])));
        let mut sender = BatchSender::new(&tx).unwrap();
        let mut sent = 0;
        while sent < out.len() {
            sent += sender.send(&tx, &out[sent..]).unwrap();
        }
        let mut buf = [0u8; 2048];
        for i in 0..9u8 {
            let n = rx1.recv(&mut buf).unwrap();
            assert_eq!(n, if i == 8 { 300 } else { 1200 }, "datagram {i}");
            assert!(buf[..n].iter().all(|b| *b == i), "datagram {i} content");
        }
        let n = rx2.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[42u8; 50][..]);
    }
}
