#![no_main]
//! The decoder on every link type: the first byte picks it.
use hostwatch::decode::{linktype, Decoder};
use libfuzzer_sys::fuzz_target;

const TYPES: [i32; 7] = [
    linktype::ETHERNET,
    linktype::NULL,
    linktype::LOOP,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::IPV6,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let mut d = Decoder::new(TYPES[usize::from(pick) % TYPES.len()]);
    // Several frames: fragments need company.
    for (i, frame) in rest.split(|&b| b == 0xfe).enumerate() {
        d.decode(i as i64 * 1_000, frame, &mut |s| {
            let _ = s.payload().len();
        });
    }
});
