//! Dataset statistics, over a stand-in tokenizer: one token per whitespace-separated word plus
//! two special tokens. (Lengths from real tokenizers are the encoder's tests:
//! `crates/encoder/tests/mixed_script.rs`.)

use embedtune_data::{DataError, DatasetStats, Example, LengthStats};

/// Words + `[CLS]` + `[SEP]`.
fn words(texts: &[&str]) -> Result<Vec<usize>, DataError> {
    Ok(texts
        .iter()
        .map(|t| t.split_whitespace().count() + 2)
        .collect())
}

#[test]
fn counts_duplicates_lengths_and_truncation() {
    let data = vec![
        // anchor 5 tokens, positive 8 tokens (truncated at 6), negative 3
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
    let s = DatasetStats::compute(&data, 6, words).unwrap();
    assert_eq!(s.examples, 3);
    assert_eq!(s.texts, 7);
    assert_eq!(s.unique_texts, 4);
    assert_eq!(s.duplicate_texts, 3);
    assert_eq!(s.examples_with_repeated_text, 1);
    assert_eq!(s.max_seq_len, 6);
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
    assert!(
        shown.contains("truncated at 6 tokens: 2 texts, 2 examples"),
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

/// The length function sees every distinct text once, in order of first appearance; a text of
/// exactly `max_seq_len` tokens is not truncated.
#[test]
fn each_distinct_text_is_measured_once() {
    let data = [
        Example::pair("b b b b", "a"),
        Example::pair("a", "b b b b"),
        Example::pair("c", "a"),
    ];
    let mut seen = Vec::new();
    let s = DatasetStats::compute(&data, 6, |texts| {
        seen = texts.iter().map(|t| t.to_string()).collect();
        words(texts)
    })
    .unwrap();
    assert_eq!(seen, ["b b b b", "a", "c"]);
    assert_eq!((s.texts, s.unique_texts, s.duplicate_texts), (6, 3, 3));
    assert_eq!((s.tokens.max, s.truncated_texts), (6, 0));
}

/// Empty texts are the tokenizer's business: the statistics count them like any other.
#[test]
fn empty_texts_are_measured_like_others() {
    let data = [Example::pair("", "some text"), Example::pair("", " ")];
    let s = DatasetStats::compute(&data, 8, words).unwrap();
    assert_eq!((s.texts, s.unique_texts), (4, 3));
    assert_eq!((s.tokens.min, s.tokens.max), (2, 4));
    // No texts at all: empty statistics.
    let none: [Example; 0] = [];
    let s = DatasetStats::compute(&none, 8, words).unwrap();
    assert_eq!((s.examples, s.texts, s.tokens.count), (0, 0, 0));
}

/// A length function that returns too few or too many lengths is a typed error, and its own
/// error comes back unchanged.
#[test]
fn wrong_length_count_and_tokenizer_errors() {
    let data = [Example::pair("a", "b"), Example::pair("c", "a")];
    let err = DatasetStats::compute(&data, 8, |texts| {
        words(texts).map(|mut l| {
            l.pop();
            l
        })
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TokenLengthCount {
                texts: 3,
                lengths: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "token lengths: 2 lengths returned for 3 texts"
    );
    let err = DatasetStats::compute(&data, 8, |_| Ok::<_, DataError>(vec![3; 4])).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TokenLengthCount {
                texts: 3,
                lengths: 4
            }
        ),
        "{err:?}"
    );

    #[derive(Debug, PartialEq)]
    enum TokError {
        Failed(&'static str),
        Data(String),
    }
    impl From<DataError> for TokError {
        fn from(e: DataError) -> Self {
            Self::Data(e.to_string())
        }
    }
    let err = DatasetStats::compute(&data, 8, |_| Err(TokError::Failed("no vocabulary")));
    assert_eq!(err, Err(TokError::Failed("no vocabulary")));
    let err = DatasetStats::compute(&data, 8, |_| Ok::<_, TokError>(Vec::new()));
    assert_eq!(
        err,
        Err(TokError::Data(
            "token lengths: 0 lengths returned for 3 texts".into()
        ))
    );
}
