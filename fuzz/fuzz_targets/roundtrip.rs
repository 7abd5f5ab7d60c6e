//! Whatever decodes (any version, either side, any chunking) re-encodes to `encoded_len`
//! bytes that decode to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midge_fuzz::RoundTripInput;

fuzz_target!(|input: RoundTripInput<'_>| {
    midge_fuzz::round_trip_target(&input);
});
