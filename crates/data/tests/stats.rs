//! Dataset statistics.
#![cfg(feature = "tokenize")]

use embedtune_data::{
    BatchTokenizer, BeirDataset, DatasetStats, Example, LengthStats, ReadOptions,
};

use crate::common::{shared, tiny_tokenizer};

#[test]
fn counts_duplicates_lengths_and_truncation() {
    let bt = BatchTokenizer::new(tiny_tokenizer(false), 6).unwrap();
    let data = vec![
        // anchor 4 tokens, positive 8 tokens (truncated at 6), negative 3
        Example {
            anchor: "the cat sat".into(),
            positive: "the cat sat on the mat".into(),
            negatives: vec!["dog".into()],
        },
        // anchor == positive (repeated inside the example); both 3 tokens
        Example::pair("dog", "dog"),
        // "the cat sat" repeats example 0's anchor
        Example::pair("the cat sat", "a big red dog ran"),
    ];
    let s = DatasetStats::compute(&data, &bt).unwrap();
    assert_eq!(s.examples, 3);
    assert_eq!(s.texts, 7);
    assert_eq!(s.unique_texts, 4);
    assert_eq!(s.duplicate_texts, 3);
    assert_eq!(s.examples_with_repeated_text, 1);
    // "the cat sat on the mat" (8) and "a big red dog ran" (7) exceed 6.
    assert_eq!(s.truncated_texts, 2);
    assert_eq!(s.truncated_examples, 2);
    // lengths: 5, 8, 3, 3, 3, 5, 7 → sorted 3 3 3 5 5 7 8
    assert_eq!(
        (s.tokens.min, s.tokens.p50, s.tokens.p90, s.tokens.max),
        (3, 5, 8, 8)
    );
    assert!((s.tokens.mean - 34.0 / 7.0).abs() < 1e-12);
    assert_eq!(s.columns["anchor"].count, 3);
    assert_eq!(s.columns["positive"].max, 8);
    assert_eq!(s.columns["negative"].count, 1);
    let shown = s.to_string();
    assert!(
        shown.contains("3 examples, 7 texts (4 distinct, 3 duplicates)"),
        "{shown}"
    );
}

#[test]
fn percentiles_nearest_rank() {
    let s = LengthStats::from_lengths((1..=100).rev().collect());
    assert_eq!(
        (s.min, s.p50, s.p90, s.p95, s.p99, s.max),
        (1, 50, 90, 95, 99, 100)
    );
    assert_eq!(LengthStats::from_lengths(vec![]).count, 0);
    let one = LengthStats::from_lengths(vec![7]);
    assert_eq!((one.p50, one.p99), (7, 7));
}

#[test]
fn scifact_train_stats_with_minilm() {
    let (Some(dir), Some(tok)) = (
        shared("data/scifact"),
        shared("models/all-MiniLM-L6-v2/tokenizer.json"),
    ) else {
        return;
    };
    let ds = BeirDataset::load_splits(&dir, &["train"], &ReadOptions::default()).unwrap();
    let pairs = ds.train_pairs("train").unwrap();
    let s = DatasetStats::compute(&pairs, &BatchTokenizer::from_file(&tok, 256).unwrap()).unwrap();
    println!("{s}");
    assert_eq!(s.examples, 919);
    assert_eq!(s.texts, 1838);
    // 919 pairs over 809 queries: queries repeat.
    assert!(s.duplicate_texts >= 919 - 809);
    assert!(s.truncated_texts > 0 && s.truncated_texts <= 919);
    assert!(s.columns["anchor"].p50 < s.columns["positive"].p50);
}
