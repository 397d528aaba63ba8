//! Grouped / flat / pair JSONL parsing: never panics; outputs respect the options.
#![no_main]

use embedtune_data::{ExampleReader, Format, PairReader};
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let (opts, file) = split_options(data);
    // Go on after record errors, as a streaming user may.
    for item in ExampleReader::new(file, "fuzz.jsonl", Format::Jsonl, opts.clone()) {
        match item {
            Ok(e) => check_example(&e, &opts),
            Err(e) => check_error(&e),
        }
    }
    for item in PairReader::new(file, "fuzz.jsonl", Format::Jsonl, opts.clone()) {
        match item {
            Ok(p) => check_pair(&p),
            Err(e) => check_error(&e),
        }
    }
});
