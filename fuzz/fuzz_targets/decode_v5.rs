//! Decodes arbitrary bytes as MQTT 5.0, on a server (fresh or after a CONNECT) and on a
//! client, in pseudo-random chunks: never a panic, never a consumed partial frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midge_codec::ProtocolVersion;

fuzz_target!(|data: &[u8]| {
    midge_fuzz::decode_target(&[ProtocolVersion::V5], data);
});
