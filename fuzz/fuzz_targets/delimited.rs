//! TSV / CSV parsing (RFC 4180 quoting, header, field counts): never panics.
#![no_main]

use embedtune_data::{ExampleReader, Format, PairReader};
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let (opts, file) = split_options(data);
    for format in [Format::Tsv, Format::Csv] {
        for item in ExampleReader::new(file, "fuzz.csv", format, opts.clone()) {
            match item {
                Ok(e) => check_example(&e, &opts),
                Err(e) => check_error(&e),
            }
        }
        for item in PairReader::new(file, "fuzz.csv", format, opts.clone()) {
            match item {
                Ok(p) => check_pair(&p),
                Err(e) => check_error(&e),
            }
        }
    }
});
