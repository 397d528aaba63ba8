// Shared by the fuzz targets (included with `include!`).

use embedtune_data::{EmptyTextPolicy, Example, ReadOptions, ScoredPair};

/// Options chosen by the first input byte; the rest is the file.
fn split_options(data: &[u8]) -> (ReadOptions, &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return (ReadOptions::default(), data);
    };
    let opts = ReadOptions {
        empty_text: if flags & 1 == 0 { EmptyTextPolicy::Error } else { EmptyTextPolicy::Skip },
        max_negatives: if flags & 2 == 0 { None } else { Some(usize::from(flags >> 5)) },
        max_line_bytes: if flags & 4 == 0 { 64 << 20 } else { 16 + usize::from(flags >> 3) },
        quoting: flags & 8 == 0,
    };
    (opts, rest)
}

/// What every produced example must satisfy.
#[allow(dead_code)]
fn check_example(e: &Example, opts: &ReadOptions) {
    assert!(!e.anchor.trim().is_empty() && !e.positive.trim().is_empty());
    assert!(e.negatives.iter().all(|n| !n.trim().is_empty()));
    if let Some(k) = opts.max_negatives {
        assert!(e.negatives.len() <= k);
    }
}

#[allow(dead_code)]
fn check_pair(p: &ScoredPair) {
    assert!(!p.a.trim().is_empty() && !p.b.trim().is_empty());
    assert!(p.score.is_finite());
}

/// Every error must carry a location that `Display` can print.
fn check_error(e: &embedtune_data::DataError) {
    let _ = e.to_string();
}
