use super::*;

const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n";

/// A backend that records calls and answers as configured.
#[derive(Default)]
struct Fake {
    publishing: Vec<String>,
    created: Vec<(Target, ResourceId)>,
    deleted: Vec<ResourceId>,
    trickled: Vec<SdpFrag>,
    restarts: u32,
    token: Option<&'static str>,
    /// Past this many resources, create answers 503.
    max: Option<usize>,
}

impl Backend for Fake {
    fn authorize(
        &mut self,
        request: &http::request::Parts,
        _target: &Target,
    ) -> Result<(), Denied> {
        let Some(want) = self.token else {
            return Ok(());
        };
        match request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        {
            None => Err(Denied::unauthorized("missing Authorization: Bearer token")),
            Some(v) if v.strip_prefix("Bearer ") == Some(want) => Ok(()),
            Some(_) => Err(Denied::forbidden("wrong bearer token")),
        }
    }
    fn create(
        &mut self,
        target: &Target,
        offer: &str,
        id: ResourceId,
    ) -> Result<String, CreateError> {
        let name = format!("{}/{}", target.app, target.stream);
        if self.max.is_some_and(|m| self.created.len() >= m) {
            return Err(CreateError::Unavailable("too many sessions".into()));
        }
        if !offer.contains("m=video") {
            return Err(CreateError::BadSdp("no usable codec: offer H.264".into()));
        }
        match target.kind {
            Kind::Whip if self.publishing.contains(&name) => {
                return Err(CreateError::AlreadyPublishing(name));
            }
            Kind::Whip => self.publishing.push(name),
            Kind::Whep if !self.publishing.contains(&name) => {
                return Err(CreateError::NotFound(name));
            }
            Kind::Whep => {}
        }
        self.created.push((target.clone(), id));
        Ok("v=0\r\nanswer\r\n".into())
    }
    fn resource(&mut self, id: ResourceId) -> Option<Resource> {
        let restarts = self.restarts;
        self.created
            .iter()
            .find(|(_, i)| *i == id)
            .map(|(t, _)| Resource {
                target: t.clone(),
                generation: restarts,
            })
    }
    fn trickle(&mut self, _id: ResourceId, frag: &SdpFrag) -> Result<(), CreateError> {
        self.trickled.push(frag.clone());
        Ok(())
    }
    fn restart_ice(&mut self, _id: ResourceId, _frag: &SdpFrag) -> Result<IceParams, CreateError> {
        self.restarts += 1;
        Ok(IceParams {
            ufrag: format!("srv{}", self.restarts),
            pwd: "x".repeat(24),
        })
    }
    fn delete(&mut self, id: ResourceId) {
        self.deleted.push(id);
        if let Some(pos) = self.created.iter().position(|(_, i)| *i == id) {
            let (t, _) = self.created.remove(pos);
            let name = format!("{}/{}", t.app, t.stream);
            if t.kind == Kind::Whip {
                self.publishing.retain(|p| *p != name);
            }
        }
    }
}

fn post(path: &str, content_type: &str, body: &str) -> Request<Bytes> {
    Request::post(path)
        .header("content-type", content_type)
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

fn body(r: &Response<Bytes>) -> &str {
    std::str::from_utf8(r.body()).unwrap()
}

#[test]
fn publish_play_delete_lifecycle() {
    let server = Server::new(Config::default());
    let mut b = Fake::default();

    // WHEP before anyone publishes: 404 with the stream named.
    let r = server.handle(post("/live/demo/whep", SDP, OFFER), &mut b, [1; 16]);
    assert_eq!(r.status(), 404);
    assert!(
        body(&r).contains("live/demo is not being published"),
        "{}",
        body(&r)
    );

    let r = server.handle(
        post("/live/demo/whip", "application/sdp; charset=utf-8", OFFER),
        &mut b,
        [2; 16],
    );
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], SDP);
    assert_eq!(body(&r), "v=0\r\nanswer\r\n");
    let whip_location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        whip_location,
        format!("/live/demo/whip/{}", ResourceId([2; 16]))
    );
    assert_eq!(
        r.headers()["etag"],
        format!("\"{}-0\"", ResourceId([2; 16])).as_str()
    );
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("Location")
    );

    // A second publisher of the same stream: 409, and the first is untouched.
    let r = server.handle(post("/live/demo/whip", SDP, OFFER), &mut b, [3; 16]);
    assert_eq!(r.status(), 409);
    assert!(body(&r).contains("already publishing"));
    assert_eq!(b.created.len(), 1);

    let r = server.handle(post("/live/demo/whep", SDP, OFFER), &mut b, [4; 16]);
    assert_eq!(r.status(), 201);
    assert_eq!(b.created.len(), 2);

    // DELETE frees the session, in server state and in the backend.
    let r = server.handle(
        Request::delete(&whip_location).body(Bytes::new()).unwrap(),
        &mut b,
        [0; 16],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(b.deleted, [ResourceId([2; 16])]);
    assert_eq!(b.created.len(), 1);
    let r = server.handle(
        Request::delete(&whip_location).body(Bytes::new()).unwrap(),
        &mut b,
        [0; 16],
    );
    assert_eq!(r.status(), 404);
    // The stream can be published again.
    assert_eq!(
        server
            .handle(post("/live/demo/whip", SDP, OFFER), &mut b, [5; 16])
            .status(),
        201
    );
}

#[test]
fn request_errors_have_statuses_and_reasons() {
    let server = Server::new(Config {
        max_body: 200,
        ..Config::default()
    });
    let mut b = Fake::default();
    let cases = [
        (
            post("/live/demo/whip", "text/plain", OFFER),
            415,
            "application/sdp",
        ),
        (
            post("/live/demo/whip", SDP, "hello"),
            400,
            "not an SDP offer",
        ),
        (
            post("/live/demo/whip", SDP, "v=0\r\nm=audio 9 RTP 0\r\n"),
            400,
            "no usable codec",
        ),
        (
            post("/live/demo/whip", SDP, &"v=0\r\nm=video\r\n".repeat(40)),
            413,
            "larger than 200",
        ),
        (
            post("/live/de%20mo/whip", SDP, OFFER),
            404,
            "no WHIP/WHEP endpoint",
        ),
        (
            post("/live/demo/other", SDP, OFFER),
            404,
            "no WHIP/WHEP endpoint",
        ),
        (post("/a/b/whip/extra/more", SDP, OFFER), 404, ""),
        (
            post(
                "/live/demo/whip/00000000000000000000000000000000",
                SDP,
                OFFER,
            ),
            404,
            "no such session",
        ),
        (
            Request::get("/live/demo/whip").body(Bytes::new()).unwrap(),
            405,
            "use POST",
        ),
    ];
    for (req, status, needle) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let r = server.handle(req, &mut b, [9; 16]);
        assert_eq!(r.status(), status, "{what}: {}", body(&r));
        assert!(body(&r).contains(needle), "{what}: {}", body(&r));
    }
    assert_eq!(b.created.len(), 0);
    let r = server.handle(
        Request::get("/live/demo/whip").body(Bytes::new()).unwrap(),
        &mut b,
        [9; 16],
    );
    assert_eq!(r.headers()["allow"], "POST, OPTIONS");
}

#[test]
fn authorization_hook_gives_401_and_403() {
    let server = Server::new(Config::default());
    let mut b = Fake {
        token: Some("s3cret"),
        ..Fake::default()
    };
    let r = server.handle(post("/live/demo/whip", SDP, OFFER), &mut b, [1; 16]);
    assert_eq!(r.status(), 401);
    assert!(body(&r).contains("Bearer"));
    let mut req = post("/live/demo/whip", SDP, OFFER);
    req.headers_mut()
        .insert("authorization", HeaderValue::from_static("Bearer nope"));
    assert_eq!(server.handle(req, &mut b, [1; 16]).status(), 403);
    let mut req = post("/live/demo/whip", SDP, OFFER);
    req.headers_mut()
        .insert("authorization", HeaderValue::from_static("Bearer s3cret"));
    assert_eq!(server.handle(req, &mut b, [1; 16]).status(), 201);
    assert!(b.created.len() == 1, "authorization runs before create");
}

#[test]
fn trickle_restart_and_etags() {
    let server = Server::new(Config::default());
    let mut b = Fake::default();
    let r = server.handle(post("/live/demo/whip", SDP, OFFER), &mut b, [2; 16]);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let etag0 = r.headers()["etag"].to_str().unwrap().to_owned();
    let patch = |if_match: Option<&str>, ct: &str, text: &str| {
        let mut req = Request::patch(location.as_str()).header("content-type", ct);
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        req.body(Bytes::from(text.to_owned())).unwrap()
    };
    let candidate = "a=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host\r\n";

    // Trickle with the right ETag, and without one: 204.
    assert_eq!(
        server
            .handle(patch(Some(&etag0), SDPFRAG, candidate), &mut b, [0; 16])
            .status(),
        204
    );
    assert_eq!(
        server
            .handle(patch(None, SDPFRAG, candidate), &mut b, [0; 16])
            .status(),
        204
    );
    assert_eq!(b.trickled.len(), 2);
    assert_eq!(b.trickled[0].candidates.len(), 1);
    // Wrong content type or a bad fragment.
    assert_eq!(
        server
            .handle(patch(None, SDP, candidate), &mut b, [0; 16])
            .status(),
        415
    );
    assert_eq!(
        server
            .handle(patch(None, SDPFRAG, "a=ice-pwd:only\r\n"), &mut b, [0; 16])
            .status(),
        400
    );

    // ICE restart: 200, the server's new credentials, a new ETag.
    let restart = "a=ice-ufrag:new1\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n";
    let r = server.handle(patch(Some("*"), SDPFRAG, restart), &mut b, [0; 16]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], SDPFRAG);
    assert!(body(&r).contains("a=ice-ufrag:srv1"));
    let etag1 = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(etag0, etag1);
    // The old ETag no longer matches: 412; the new one does.
    let r = server.handle(patch(Some(&etag0), SDPFRAG, candidate), &mut b, [0; 16]);
    assert_eq!(r.status(), 412);
    assert!(body(&r).contains("ETag"));
    assert_eq!(
        server
            .handle(patch(Some(&etag1), SDPFRAG, candidate), &mut b, [0; 16])
            .status(),
        204
    );
}

#[test]
fn cors_preflight_and_links() {
    let config = Config {
        allowed_origin: Some("https://player.example.com".into()),
        ice_servers: vec![
            IceServer {
                url: "stun:stun.example.com:3478".into(),
                username: None,
                credential: None,
            },
            IceServer {
                url: "turn:turn.example.com:3478".into(),
                username: Some("u".into()),
                credential: Some("p".into()),
            },
        ],
        ..Config::default()
    };
    let server = Server::new(config);
    let mut b = Fake::default();
    let r = server.handle(
        Request::options("/live/demo/whip")
            .body(Bytes::new())
            .unwrap(),
        &mut b,
        [0; 16],
    );
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://player.example.com"
    );
    assert_eq!(r.headers()["access-control-allow-methods"], "POST, OPTIONS");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
    assert_eq!(r.headers()["accept-post"], SDP);
    let links: Vec<_> = r
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0], "<stun:stun.example.com:3478>; rel=\"ice-server\"");
    assert!(links[1].contains("username=\"u\"; credential=\"p\"; credential-type=\"password\""));

    let r = server.handle(post("/live/demo/whip", SDP, OFFER), &mut b, [2; 16]);
    assert_eq!(r.headers().get_all("link").iter().count(), 2);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = server.handle(
        Request::options(location.as_str())
            .body(Bytes::new())
            .unwrap(),
        &mut b,
        [0; 16],
    );
    assert_eq!(r.headers()["accept-patch"], SDPFRAG);

    let quiet = Server::new(Config {
        allowed_origin: None,
        ..Config::default()
    });
    let r = quiet.handle(
        Request::options("/live/demo/whip")
            .body(Bytes::new())
            .unwrap(),
        &mut b,
        [0; 16],
    );
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn ended_resources_are_gone_and_limits_hold() {
    let server = Server::new(Config::default());
    let mut b = Fake {
        max: Some(1),
        ..Fake::default()
    };
    let r = server.handle(post("/live/a/whip", SDP, OFFER), &mut b, [1; 16]);
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        super::location(&b.created[0].0, ResourceId([1; 16]))
    );
    // Past the backend's limit: 503 with its reason.
    let r = server.handle(post("/live/b/whip", SDP, OFFER), &mut b, [2; 16]);
    assert_eq!(r.status(), 503);
    assert!(body(&r).contains("too many sessions"));
    // The session ended by itself (the backend forgot it): its URL is gone.
    b.created.clear();
    b.publishing.clear();
    let patch = Request::patch(location.as_str())
        .header("content-type", SDPFRAG)
        .body(Bytes::from_static(b"a=end-of-candidates\r\n"))
        .unwrap();
    assert_eq!(server.handle(patch, &mut b, [0; 16]).status(), 404);
    // A reused id is refused instead of aliasing a live resource.
    assert_eq!(
        server
            .handle(post("/live/b/whip", SDP, OFFER), &mut b, [2; 16])
            .status(),
        201
    );
    b.max = None;
    assert_eq!(
        server
            .handle(post("/live/d/whip", SDP, OFFER), &mut b, [2; 16])
            .status(),
        503
    );
}

proptest::proptest! {
    /// Any method, path, content type and body: a response, never a panic;
    /// resources appear only with a 201.
    #[test]
    fn arbitrary_requests(method in "(GET|POST|PATCH|DELETE|OPTIONS|PUT)", path in "/[a-z/0-9.]{0,40}",
                          ct in "(application/sdp|application/trickle-ice-sdpfrag|text/plain)", text in ".{0,200}") {
        let server = Server::new(Config::default());
        let mut b = Fake::default();
        let req = Request::builder().method(method.as_str()).uri(path.as_str()).header("content-type", ct)
            .body(Bytes::from(text)).unwrap();
        let r = server.handle(req, &mut b, [5; 16]);
        proptest::prop_assert_eq!(b.created.len(), usize::from(r.status() == 201));
    }
}
