#![no_main]
//! Redis replies (what a server, or something pretending to be one, sends
//! back to the Redis output), read straight and through the buffered reader
//! the transport uses; and `--output` values.
use hostwatch::output::redis::ReplyReader;
use hostwatch::output::resp;
use hostwatch::output::spec::OutputSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((_, used)) = resp::reply(rest) {
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
    }
    let mut r = ReplyReader::new(1 << 16);
    let mut input = std::io::Cursor::new(data);
    while r.next(&mut input, |_| ()).is_ok() {}
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = OutputSpec::parse(s).map(|o| o.label());
    }
});
