//! Any query string: extraction and verification never panic; whatever
//! verifies re-signs to the same auth_key (hex case aside). And any signed
//! key verifies.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rts_auth::{AuthKey, Keys, auth_key_from_query, sign, verify, verify_query};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (uri, rest) = text.split_once('\n').unwrap_or(("/live/demo", &text));
    let (key, query) = rest.split_once('\n').unwrap_or(("k", rest));
    let keys = Keys::new(key).with_secondary("second");
    let validity = Duration::from_secs(u64::from(data.first().copied().unwrap_or(0)) * 60);
    let now = 1_700_000_000;

    if let Ok(v) = verify_query(uri, Some(query), &keys, validity, now) {
        let given = auth_key_from_query(query).unwrap().unwrap();
        let parsed = AuthKey::parse(&given).unwrap();
        let used = match v.key {
            rts_auth::KeyUsed::Primary => key,
            rts_auth::KeyUsed::Secondary => "second",
        };
        let resigned = sign(uri, parsed.timestamp, parsed.rand, parsed.uid, used).unwrap();
        assert!(resigned.eq_ignore_ascii_case(&given));
    }
    // Parsing a raw auth_key never panics; a parsed key prints back as given.
    if let Ok(parsed) = AuthKey::parse(query) {
        assert!(parsed.to_string().eq_ignore_ascii_case(query));
    }
    // Signing with fuzzed parts either refuses or verifies.
    let mut parts = query.splitn(3, '\n');
    let (rand, uid) = (parts.next().unwrap_or("0"), parts.next().unwrap_or("0"));
    if let Ok(signed) = sign(uri, now, rand, uid, key) {
        assert!(verify(uri, &signed, &keys, validity, now).is_ok());
    }
});
