//! `application/trickle-ice-sdpfrag` bodies (RFC 8840 section 9).

/// ICE credentials (`a=ice-ufrag`, `a=ice-pwd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceParams {
    /// `ice-ufrag`.
    pub ufrag: String,
    /// `ice-pwd`.
    pub pwd: String,
}

impl IceParams {
    /// The sdpfrag a server answers an ICE restart with.
    pub fn to_sdpfrag(&self) -> String {
        format!("a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", self.ufrag, self.pwd)
    }
}

/// The parts of an sdpfrag WHIP/WHEP uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpFrag {
    /// New credentials: present in an ICE restart.
    pub ice: Option<IceParams>,
    /// `a=candidate:` values (without the `a=` prefix), in order.
    pub candidates: Vec<String>,
    /// `a=mid:` values of the media sections named.
    pub mids: Vec<String>,
    /// `a=end-of-candidates` was present.
    pub end_of_candidates: bool,
}

impl SdpFrag {
    /// Parses an sdpfrag. Lines other than the ones kept are ignored, as RFC
    /// 8840 allows; a lone `ice-ufrag` without `ice-pwd` (or the reverse),
    /// or a line that is not `x=…`, is an error.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let mut frag = SdpFrag::default();
        let (mut ufrag, mut pwd) = (None, None);
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            let Some((kind, value)) = line.split_once('=') else {
                return Err("an sdpfrag line is not of the form x=value");
            };
            if kind.len() != 1 {
                return Err("an sdpfrag line is not of the form x=value");
            }
            if kind != "a" {
                continue;
            }
            if let Some(v) = value.strip_prefix("ice-ufrag:") {
                ufrag = Some(v.trim().to_owned());
            } else if let Some(v) = value.strip_prefix("ice-pwd:") {
                pwd = Some(v.trim().to_owned());
            } else if value.starts_with("candidate:") {
                frag.candidates.push(value.to_owned());
            } else if let Some(v) = value.strip_prefix("mid:") {
                frag.mids.push(v.trim().to_owned());
            } else if value == "end-of-candidates" {
                frag.end_of_candidates = true;
            }
        }
        frag.ice = match (ufrag, pwd) {
            (Some(ufrag), Some(pwd)) if !ufrag.is_empty() && !pwd.is_empty() => {
                Some(IceParams { ufrag, pwd })
            }
            (None, None) => None,
            _ => return Err("an ICE restart needs both a=ice-ufrag and a=ice-pwd"),
        };
        Ok(frag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8840_style_fragment() {
        // Shape of RFC 8840 section 9 / RFC 9725 section 4.4.1 examples.
        let text = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
                    a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
                    a=end-of-candidates\r\n";
        let f = SdpFrag::parse(text).unwrap();
        assert_eq!(
            f.ice,
            Some(IceParams {
                ufrag: "EsAw".into(),
                pwd: "P2uYro0UCOQ4zxjKXaWCBui1".into()
            })
        );
        assert_eq!(f.mids, ["0"]);
        assert_eq!(f.candidates.len(), 1);
        assert!(f.candidates[0].starts_with("candidate:1387637174 1 udp"));
        assert!(f.end_of_candidates);
    }

    #[test]
    fn errors() {
        assert!(SdpFrag::parse("a=ice-ufrag:x\r\n").is_err());
        assert!(SdpFrag::parse("garbage\r\n").is_err());
        assert!(SdpFrag::parse("ab=c\r\n").is_err());
        assert_eq!(SdpFrag::parse("").unwrap(), SdpFrag::default());
    }

    #[test]
    fn restart_answer_round_trips() {
        let ice = IceParams {
            ufrag: "abcd".into(),
            pwd: "p".repeat(24),
        };
        assert_eq!(SdpFrag::parse(&ice.to_sdpfrag()).unwrap().ice, Some(ice));
    }
}
