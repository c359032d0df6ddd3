//! A sequence of arbitrary requests against one WHIP/WHEP server and a
//! backend that keeps its resources: every request gets a response, and the
//! number of live resources changes only with a 201 (one more, at the
//! location given) or a DELETE answered 200 (one fewer).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

use rts_whip::{
    Backend, Config, CreateError, Denied, IceParams, Resource, ResourceId, SdpFrag, Server, Target,
};

/// Answers as the op byte says; keeps its resources.
struct Any {
    op: u8,
    live: HashMap<ResourceId, Resource>,
}

impl Backend for Any {
    fn authorize(&mut self, _: &http::request::Parts, _: &Target) -> Result<(), Denied> {
        if self.op % 7 == 0 {
            Err(Denied::forbidden("no"))
        } else {
            Ok(())
        }
    }
    fn create(&mut self, t: &Target, offer: &str, id: ResourceId) -> Result<String, CreateError> {
        if self.op % 5 == 0 {
            Err(CreateError::BadSdp("x".into()))
        } else {
            self.live.insert(
                id,
                Resource {
                    target: t.clone(),
                    generation: 0,
                },
            );
            Ok(offer.to_owned())
        }
    }
    fn resource(&mut self, id: ResourceId) -> Option<Resource> {
        self.live.get(&id).cloned()
    }
    fn trickle(&mut self, _: ResourceId, _: &SdpFrag) -> Result<(), CreateError> {
        Ok(())
    }
    fn restart_ice(&mut self, id: ResourceId, _: &SdpFrag) -> Result<IceParams, CreateError> {
        if let Some(r) = self.live.get_mut(&id) {
            r.generation = r.generation.wrapping_add(1);
        }
        Ok(IceParams {
            ufrag: "u".into(),
            pwd: "p".into(),
        })
    }
    fn delete(&mut self, id: ResourceId) {
        self.live.remove(&id);
    }
}

fuzz_target!(|data: &[u8]| {
    let server = Server::new(Config {
        max_body: 512,
        ..Config::default()
    });
    let mut backend = Any {
        op: 0,
        live: HashMap::new(),
    };
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
        let before = backend.live.len();
        let mut random = [0u8; 16];
        random[0] = n as u8;
        random[1] = op;
        backend.op = op;
        let r = server.handle(req, &mut backend, random);
        let after = backend.live.len();
        match (method, r.status().as_u16()) {
            ("POST", 201) => {
                assert_eq!(after, before + 1);
                let id = ResourceId(random);
                let location = r.headers()["location"].to_str().unwrap().to_owned();
                assert_eq!(location, rts_whip::location(&backend.live[&id].target, id));
                locations.push(location);
            }
            ("DELETE", 200) => assert_eq!(after + 1, before),
            _ => assert_eq!(after, before),
        }
        assert!(r.status().as_u16() >= 200 && r.status().as_u16() < 600);
    }
});
