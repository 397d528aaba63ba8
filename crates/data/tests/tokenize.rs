//! Batch tokenisation: ids, masks, truncation as sentence-transformers, padding, tensors.
#![cfg(feature = "tokenize")]

use burn_ndarray::{NdArray, NdArrayDevice};
use embedtune_data::tokenizers::{TruncationParams, TruncationStrategy};
use embedtune_data::{BatchTokenizer, DataError};

use crate::common::{shared, tiny_tokenizer};

// Tiny vocabulary: [CLS]=1 [SEP]=2 the=3 cat=4 sat=5 on=6 mat=7 a=8 dog=9 [PAD]=17.

#[test]
fn pads_to_longest_with_pad_token_and_ignores_stored_settings() {
    // tokenizer.json says: truncate at 3, pad to 20. Neither applies.
    let bt = BatchTokenizer::new(tiny_tokenizer(false), 128).unwrap();
    assert_eq!(bt.pad_id(), 17);
    let b = bt.encode(&["The cat sat on the mat", "a dog"]).unwrap();
    assert_eq!((b.batch, b.seq_len), (2, 8));
    assert_eq!(&b.input_ids[..8], &[1, 3, 4, 5, 6, 3, 7, 2]);
    assert_eq!(&b.input_ids[8..], &[1, 8, 9, 2, 17, 17, 17, 17]);
    assert_eq!(&b.attention_mask[8..], &[1, 1, 1, 1, 0, 0, 0, 0]);
    assert!(b.token_type_ids.iter().all(|&t| t == 0));
    assert_eq!(b.lengths, [8, 4]);
    assert_eq!(b.truncated(), 0);
    assert!((b.padding_fraction() - 4.0 / 16.0).abs() < 1e-12);
}

#[test]
fn pad_id_from_padding_config_wins() {
    let bt = BatchTokenizer::new(tiny_tokenizer(true), 16).unwrap();
    assert_eq!(bt.pad_id(), 16);
    let b = bt.encode(&["cat", "the big red dog"]).unwrap();
    assert_eq!(&b.input_ids[..b.seq_len], &[1, 4, 2, 16, 16, 16]);
}

#[test]
fn truncation_keeps_cls_and_sep_within_max_seq_len() {
    let bt = BatchTokenizer::new(tiny_tokenizer(false), 5).unwrap();
    let b = bt.encode(&["the cat sat on the mat", "a dog"]).unwrap();
    assert_eq!(b.seq_len, 5);
    assert_eq!(&b.input_ids[..5], &[1, 3, 4, 5, 2]);
    assert_eq!(&b.input_ids[5..], &[1, 8, 9, 2, 17]);
    assert_eq!(b.lengths, [5, 4]);
    assert_eq!(b.full_lengths, [8, 4]);
    assert_eq!(b.truncated(), 1);
}

#[test]
fn same_ids_as_tokenizers_longest_first_truncation() {
    let texts = [
        "the cat sat on the mat",
        "a big red dog ran on the mat , the cats sat",
        "dogs",
        "the sitting cat",
        "zebra unknown words here",
    ];
    for max in [3, 4, 6, 9, 64] {
        let bt = BatchTokenizer::new(tiny_tokenizer(false), max).unwrap();
        let mut reference = tiny_tokenizer(false);
        reference.with_padding(None);
        reference
            .with_truncation(Some(TruncationParams {
                max_length: max,
                strategy: TruncationStrategy::LongestFirst,
                ..TruncationParams::default()
            }))
            .unwrap();
        let b = bt.encode(&texts).unwrap();
        for (row, text) in texts.iter().enumerate() {
            let want: Vec<i64> = reference
                .encode(*text, true)
                .unwrap()
                .get_ids()
                .iter()
                .map(|&i| i64::from(i))
                .collect();
            let got = &b.input_ids[row * b.seq_len..row * b.seq_len + b.lengths[row]];
            assert_eq!(got, want.as_slice(), "max {max}: {text}");
        }
    }
}

#[test]
fn parallel_batch_equals_one_by_one() {
    let bt = BatchTokenizer::new(tiny_tokenizer(false), 12).unwrap();
    let words = ["the", "cat", "sat", "on", "mat", "dog", "ran", "big"];
    let texts: Vec<String> = (0..500)
        .map(|i| {
            (0..(i % 17 + 1))
                .map(|j| words[(i * 7 + j * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let b = bt.encode(&texts).unwrap();
    for (row, text) in texts.iter().enumerate() {
        let one = bt.encode(&[text]).unwrap();
        assert_eq!(
            &b.input_ids[row * b.seq_len..row * b.seq_len + one.seq_len],
            one.input_ids.as_slice()
        );
        assert_eq!(b.lengths[row], one.lengths[0]);
    }
}

#[test]
fn empty_text_and_bad_settings_are_errors() {
    let bt = BatchTokenizer::new(tiny_tokenizer(false), 8).unwrap();
    let err = bt.encode(&["cat", "  ", "dog"]).unwrap_err();
    assert!(
        matches!(err, DataError::EmptyTextInBatch { index: 1 }),
        "{err:?}"
    );
    let err = bt.encode::<&str>(&[]).unwrap_err();
    assert!(matches!(err, DataError::EmptyBatch), "{err:?}");
    let err = BatchTokenizer::new(tiny_tokenizer(false), 2).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::MaxSeqTooSmall {
                max_seq_len: 2,
                special: 2
            }
        ),
        "{err:?}"
    );
    let err = BatchTokenizer::from_file("/nonexistent/tokenizer.json", 8).unwrap_err();
    assert!(matches!(err, DataError::Tokenizer { .. }), "{err:?}");
}

#[test]
fn tensors_on_a_burn_backend() {
    let bt = BatchTokenizer::new(tiny_tokenizer(false), 16).unwrap();
    let b = bt.encode(&["the cat", "a big red dog ran"]).unwrap();
    let device = NdArrayDevice::default();
    let (ids, mask, types) = b.to_tensors::<NdArray>(&device);
    assert_eq!(ids.dims(), [2, b.seq_len]);
    assert_eq!(mask.dims(), [2, b.seq_len]);
    assert_eq!(types.dims(), [2, b.seq_len]);
    let back: Vec<i64> = ids.into_data().convert::<i64>().to_vec().unwrap();
    assert_eq!(back, b.input_ids);
    let back: Vec<i64> = mask.into_data().convert::<i64>().to_vec().unwrap();
    assert_eq!(back, b.attention_mask);
}

#[test]
fn minilm_ids_match_sentence_transformers_reference() {
    let (Some(tok), Some(reference)) = (
        shared("models/all-MiniLM-L6-v2/tokenizer.json"),
        shared("reference/minilm_embeddings.jsonl"),
    ) else {
        return;
    };
    let bt = BatchTokenizer::from_file(&tok, 256).unwrap();
    assert_eq!(bt.pad_id(), 0);
    let mut texts = Vec::new();
    let mut want = Vec::new();
    for line in std::fs::read_to_string(&reference).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = v["text"].as_str().unwrap().to_string();
        let ids: Vec<i64> = v["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        let types: Vec<i64> = v["token_type_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        if text.trim().is_empty() {
            // sentence-transformers encodes "" as [CLS] [SEP]; here it is a typed error.
            assert!(matches!(
                bt.encode(&[&text]),
                Err(DataError::EmptyTextInBatch { index: 0 })
            ));
            continue;
        }
        texts.push(text);
        want.push((ids, types));
    }
    assert!(texts.len() >= 15);
    let b = bt.encode(&texts).unwrap();
    assert!(
        b.truncated() >= 2,
        "the reference has texts past 256 tokens"
    );
    for (row, (ids, types)) in want.iter().enumerate() {
        let at = row * b.seq_len;
        assert_eq!(
            &b.input_ids[at..at + b.lengths[row]],
            ids.as_slice(),
            "{}",
            texts[row]
        );
        assert_eq!(&b.token_type_ids[at..at + b.lengths[row]], types.as_slice());
    }
}
