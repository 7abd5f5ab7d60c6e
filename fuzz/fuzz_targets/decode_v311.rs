//! Decodes arbitrary bytes as MQTT 3.1 and 3.1.1, on a server (fresh or after a CONNECT)
//! and on a client, in pseudo-random chunks: never a panic, never a consumed partial frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midge_codec::ProtocolVersion;

fuzz_target!(|data: &[u8]| {
    midge_fuzz::decode_target(&[ProtocolVersion::V31, ProtocolVersion::V311], data);
});
