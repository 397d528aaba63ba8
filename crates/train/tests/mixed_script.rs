//! Hard-negative mining over mixed-script text (issue 15): Chinese, English and both, full-width
//! forms, emoji sequences and decomposed accents. Texts are matched byte for byte (a positive
//! never comes back as its own query's negative), and the grouped JSONL written for the mined
//! examples reads back to exactly the same examples.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn_ndarray::NdArray;
use embedtune_data::{read_examples, Example, ReadOptions};
use embedtune_encoder::SentenceEncoder;
use embedtune_train::mining::{
    mine_hard_negatives, write_grouped_jsonl, MiningConfig, MiningReport, Sampling,
};

use super::{serial, tiny_model};

/// (query, positive) pairs; the first query has two positives.
fn pairs() -> Vec<Example> {
    [
        (
            "SMSF 的 ESA 在哪里申请？",
            "ESA 是 electronic service address，在 SMSF 的基金信息里。",
        ),
        (
            "SMSF 的 ESA 在哪里申请？",
            "向 SMSF 消息服务提供商申请 ESA 🙂",
        ),
        (
            "什么是优惠供款上限？",
            "优惠供款上限是每年 $30,000（concessional cap）。",
        ),
        (
            "ＳＭＳＦ　１２３，。？",
            "全角的 ＳＭＳＦ 问题，答案也是全角：１２３。",
        ),
        (
            "👨\u{200d}👩\u{200d}👧 家庭账户怎么开？",
            "家庭账户 🇦🇺 需要每个成员的 TFN 👍🏽",
        ),
        (
            "café or cafe\u{301}?",
            "Both spell café; cafe\u{301} is decomposed.",
        ),
        (
            "多行\n问题 with \"引号\"",
            "答案\u{2028}带有行分隔符 and a tab\there",
        ),
    ]
    .iter()
    .map(|(q, p)| Example::pair(*q, *p))
    .collect()
}

/// Passages besides the positives: near misses in every script, an NFC / NFD pair, and one
/// positive repeated (it must stay a positive of its query).
fn corpus() -> Vec<String> {
    [
        "SMSF 的审计报告在哪里提交？",
        "ESA 和 USI 不一样。",
        "非优惠供款上限是 $120,000。",
        "ＡＢＮ　４５６，。？",
        "👨\u{200d}👩\u{200d}👦 另一个家庭",
        "🇳🇿 新西兰的 KiwiSaver",
        "café 账户",
        "cafe\u{301} 账户",
        "向 SMSF 消息服务提供商申请 ESA 🙂",
        "Ｆｕｌｌ－ｗｉｄｔｈ　ｔｅｘｔ",
        "👍🏻👍🏼👍🏽👍🏾👍🏿",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Every mined example keeps its pair byte for byte, and its negatives are known passages, none
/// of them a positive of its query.
fn check_mined(mined: &[Example], pairs: &[Example], corpus: &[String], k: usize) {
    let passages: BTreeSet<&str> = corpus
        .iter()
        .map(String::as_str)
        .chain(pairs.iter().map(|p| p.positive.as_str()))
        .collect();
    let mut positives: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in pairs {
        positives
            .entry(p.anchor.as_str())
            .or_default()
            .insert(p.positive.as_str());
    }
    let mut at = 0;
    for e in mined {
        // in input order
        at += pairs[at..]
            .iter()
            .position(|p| p.anchor == e.anchor && p.positive == e.positive)
            .unwrap_or_else(|| panic!("{e:?} is not an input pair"));
        assert!(e.negatives.len() <= k);
        for n in &e.negatives {
            assert!(passages.contains(n.as_str()), "{n:?} is not a passage");
            assert!(
                !positives[e.anchor.as_str()].contains(n.as_str()),
                "{n:?} is a positive of {:?}",
                e.anchor
            );
        }
    }
}

/// Writes `mined` as grouped JSONL and reads it back: the same examples, and the file holds
/// the texts as UTF-8 (not `\u` escapes), one line per group.
fn round_trip(dir: &Path, mined: &[Example]) {
    let path = dir.join("挖掘结果 ⛏.jsonl");
    write_grouped_jsonl(&path, mined).expect("write");
    let back = read_examples(&path, &ReadOptions::default()).expect("read back");
    assert_eq!(back.items, mined);
    let text = std::fs::read_to_string(&path).expect("utf-8");
    assert!(text.contains("SMSF 的 ESA 在哪里申请？"), "{text}");
    assert!(text.contains("👨\u{200d}👩\u{200d}👧"), "{text}");
    let groups = mined
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            *i == 0 || mined[i - 1].anchor != e.anchor || mined[i - 1].negatives != e.negatives
        })
        .count();
    assert_eq!(text.lines().count(), groups, "{text}");
}

fn mine_all<B: Backend>(model: &SentenceEncoder<B>) -> Vec<(Vec<Example>, MiningReport)> {
    let (pairs, corpus) = (pairs(), corpus());
    let dir = tempfile::tempdir().expect("tmp");
    let mut out = Vec::new();
    let top = MiningConfig {
        num_negatives: 3,
        range_max: 12,
        batch_size: 4,
        ..Default::default()
    };
    let configs = [
        top.clone(),
        MiningConfig {
            sampling: Sampling::Random,
            seed: 7,
            range_min: 1,
            query_prompt: Some("问：".into()),
            passage_prompt: Some("答：".into()),
            ..top.clone()
        },
        // Too strict for most pairs: the short ones are kept with what they got.
        MiningConfig {
            max_score: Some(0.0),
            drop_short: false,
            ..top
        },
    ];
    for cfg in &configs {
        let (mined, report) = mine_hard_negatives(model, &pairs, &corpus, cfg).expect("mine");
        assert_eq!(report.pairs, pairs.len());
        assert_eq!(report.complete + report.short, pairs.len());
        check_mined(&mined, &pairs, &corpus, cfg.num_negatives);
        if cfg.drop_short {
            assert!(mined.iter().all(|e| e.negatives.len() == cfg.num_negatives));
        } else {
            assert_eq!(mined.len(), pairs.len());
        }
        round_trip(dir.path(), &mined);
        out.push((mined, report));
    }
    // The two positives of the first query share its negatives, so they were one group.
    let (mined, _) = &out[0];
    assert_eq!(mined.len(), pairs.len());
    assert_eq!(mined[0].negatives, mined[1].negatives);
    out
}

#[test]
fn mining_mixed_script_texts_round_trips_through_grouped_jsonl() {
    let _serial = serial();
    let model = tiny_model().valid();
    let first = mine_all(&model);
    // Deterministic, sampling included.
    assert_eq!(mine_all(&model), first);
}

#[test]
fn mining_mixed_script_texts_with_the_multilingual_model() {
    let Some(root) = std::env::var_os("EMBEDTUNE_SHARED") else {
        eprintln!("skipped: EMBEDTUNE_SHARED is not set");
        return;
    };
    let dir = Path::new(&root).join("models/tiny-xlm-roberta-random");
    if !dir.is_dir() {
        eprintln!("skipped: {} does not exist", dir.display());
        return;
    }
    let model = SentenceEncoder::<NdArray<f32>>::load(&dir, &Default::default()).expect("load");
    mine_all(&model);
}
