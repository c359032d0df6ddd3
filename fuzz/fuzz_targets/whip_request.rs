//! A sequence of arbitrary requests against one WHIP/WHEP server: every
//! request gets a response, and the number of live resources changes only
//! with a 201 (one more) or a DELETE answered 200 (one fewer).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_whip::{
    Backend, Config, CreateError, Denied, IceParams, ResourceId, SdpFrag, Server, Target,
};

struct Any(u8);

impl Backend for Any {
    fn authorize(&mut self, _: &http::request::Parts, _: &Target) -> Result<(), Denied> {
        if self.0 % 7 == 0 {
            Err(Denied::forbidden("no"))
        } else {
            Ok(())
        }
    }
    fn create(&mut self, _: &Target, offer: &str, _: ResourceId) -> Result<String, CreateError> {
        if self.0 % 5 == 0 {
            Err(CreateError::BadSdp("x".into()))
        } else {
            Ok(offer.to_owned())
        }
    }
    fn trickle(&mut self, _: ResourceId, _: &SdpFrag) -> Result<(), CreateError> {
        Ok(())
    }
    fn restart_ice(&mut self, _: ResourceId, _: &SdpFrag) -> Result<IceParams, CreateError> {
        Ok(IceParams {
            ufrag: "u".into(),
            pwd: "p".into(),
        })
    }
    fn delete(&mut self, _: ResourceId) {}
}

fuzz_target!(|data: &[u8]| {
    let mut server = Server::new(Config {
        max_body: 512,
        ..Config::default()
    });
    let mut locations: Vec<String> = Vec::new();
    for (n, chunk) in data.split(|b| *b == 0xff).take(32).enumerate() {
        let Some((&op, rest)) = chunk.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(rest);
        let (head, body) = text.split_once('\n').unwrap_or((&text, ""));
        let method = ["POST", "PATCH", "DELETE", "OPTIONS", "GET"][usize::from(op % 5)];
        // Sometimes reuse a location we were given, so PATCH/DELETE reach live resources.
        let path = match locations.get(usize::from(op / 5) % 4) {
            Some(loc) if op & 0x80 != 0 => loc.clone(),
            _ => head.to_owned(),
        };
        let content_type = if op & 0x40 != 0 {
            "application/trickle-ice-sdpfrag"
        } else {
            "application/sdp"
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path.as_str())
            .header("content-type", content_type);
        if op & 0x20 != 0 {
            builder = builder.header("if-match", if op & 0x10 != 0 { "*" } else { head });
        }
        let Ok(req) = builder.body(Bytes::from(body.to_owned())) else {
            continue;
        };
        let before = server.resources().count();
        let mut random = [0u8; 16];
        random[0] = n as u8;
        random[1] = op;
        let r = server.handle(req, &mut Any(op), random);
        let after = server.resources().count();
        match (method, r.status().as_u16()) {
            ("POST", 201) => {
                assert_eq!(after, before + 1);
                locations.push(r.headers()["location"].to_str().unwrap().to_owned());
            }
            ("DELETE", 200) => assert_eq!(after + 1, before),
            _ => assert_eq!(after, before),
        }
        assert!(r.status().as_u16() >= 200 && r.status().as_u16() < 600);
    }
});
