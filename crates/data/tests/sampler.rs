//! Seeded batch sampling, drop_last, no-duplicates (sentence-transformers semantics), buckets.

use std::collections::HashSet;

use embedtune_data::{length_sorted_batches, BatchSampler, Example, TextColumns};

fn pairs(spec: &[(&str, &str)]) -> Vec<Example> {
    spec.iter().map(|(a, p)| Example::pair(*a, *p)).collect()
}

/// 100 examples with many repeated positives and some repeated anchors and negatives.
fn dupey() -> Vec<Example> {
    (0..100)
        .map(|i| Example {
            anchor: format!("q{}", i % 90),
            positive: format!("p{}", i % 23),
            negatives: vec![format!("p{}", (i + 5) % 23), format!("n{}", i % 7)],
        })
        .collect()
}

fn sorted_indices(batches: &[Vec<usize>]) -> Vec<usize> {
    let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
    all.sort_unstable();
    all
}

#[test]
fn same_seed_same_order_other_seed_or_epoch_differs() {
    let data = dupey();
    let s = BatchSampler::new(8).unwrap().seed(42);
    assert_eq!(s.batches(&data, 0), s.batches(&data, 0));
    assert_ne!(s.batches(&data, 0), s.batches(&data, 1));
    assert_ne!(s.batches(&data, 0), s.clone().seed(43).batches(&data, 0));
    // A permutation of all indices.
    assert_eq!(
        sorted_indices(&s.batches(&data, 0)),
        (0..100).collect::<Vec<_>>()
    );
    // Without shuffling: dataset order.
    let plain = BatchSampler::new(30)
        .unwrap()
        .shuffle(false)
        .batches(&data, 0);
    assert_eq!(plain[1], (30..60).collect::<Vec<_>>());
    assert_eq!(plain.len(), 4);
    assert_eq!(plain[3].len(), 10);
}

#[test]
fn drop_last_drops_the_partial_batch() {
    let data = dupey();
    let s = BatchSampler::new(30).unwrap().drop_last(true).seed(1);
    let batches = s.batches(&data, 0);
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.len() == 30));
    assert_eq!(s.num_batches(100), 3);
    assert_eq!(BatchSampler::new(30).unwrap().num_batches(100), 4);
}

#[test]
fn no_duplicate_text_in_any_batch() {
    let data = dupey();
    for seed in 0..5 {
        for drop_last in [false, true] {
            let s = BatchSampler::new(16)
                .unwrap()
                .seed(seed)
                .no_duplicates(true)
                .drop_last(drop_last);
            let batches = s.batches(&data, 0);
            for b in &batches {
                let mut seen = HashSet::new();
                for &i in b {
                    // Texts of one example may repeat among themselves; across examples never.
                    let own: HashSet<&str> = data[i].columns().map(|(_, t)| t).collect();
                    for t in own {
                        assert!(seen.insert(t), "seed {seed}: {t} twice in a batch");
                    }
                }
                if drop_last {
                    assert_eq!(b.len(), 16);
                }
            }
            if !drop_last {
                // Every example is used exactly once.
                assert_eq!(sorted_indices(&batches), (0..100).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn no_duplicates_walk_matches_sentence_transformers() {
    // Dataset order (no shuffle) makes the walk checkable by hand:
    // walk 1 takes 0, defers 1 (shares "x"), takes 2 → [0, 2];
    // walk 2 retries 1 first, then 3 → [1, 3]; walk 3 → [4].
    let data = pairs(&[("a", "x"), ("b", "x"), ("c", "y"), ("d", "z"), ("e", "y")]);
    let s = BatchSampler::new(2)
        .unwrap()
        .shuffle(false)
        .no_duplicates(true);
    assert_eq!(s.batches(&data, 0), vec![vec![0, 2], vec![1, 3], vec![4]]);
    assert_eq!(
        s.clone().drop_last(true).batches(&data, 0),
        vec![vec![0, 2], vec![1, 3]]
    );

    // All share a positive: each walk yields one example (several partial batches).
    let same = pairs(&[("a", "x"), ("b", "x"), ("c", "x")]);
    assert_eq!(s.batches(&same, 0), vec![vec![0], vec![1], vec![2]]);
    // With drop_last nothing fills a batch, and as in sentence-transformers there is no resampling
    // when a pass yields nothing.
    assert!(s.clone().drop_last(true).batches(&same, 0).is_empty());

    // A negative equal to another example's anchor is a conflict too.
    let data = vec![
        Example {
            anchor: "a".into(),
            positive: "p".into(),
            negatives: vec!["b".into()],
        },
        Example::pair("b", "q"),
        Example::pair("c", "r"),
    ];
    assert_eq!(s.batches(&data, 0), vec![vec![0, 2], vec![1]]);
}

#[test]
fn drop_last_no_duplicates_tops_up_with_extra_passes() {
    // 8 examples, 2 sharing each positive, batch 4 of distinct positives: with drop_last one
    // pass may leave fewer than 8 / 4 = 2 full batches; extra passes fill up to 2 at most.
    let data: Vec<Example> = (0..8)
        .map(|i| Example::pair(format!("a{i}"), format!("p{}", i / 2)))
        .collect();
    for seed in 0..20 {
        let s = BatchSampler::new(4)
            .unwrap()
            .seed(seed)
            .no_duplicates(true)
            .drop_last(true);
        let batches = s.batches(&data, 0);
        assert!(
            !batches.is_empty() && batches.len() <= 2,
            "seed {seed}: {batches:?}"
        );
        assert!(batches.iter().all(|b| b.len() == 4));
    }
}

#[test]
fn length_buckets_group_similar_lengths() {
    let data: Vec<Example> = (0..64)
        .map(|i| Example::pair(format!("q{i}"), "w ".repeat(1 + (i * 37) % 64)))
        .collect();
    let len = |i: usize| data[i].columns().map(|(_, t)| t.len()).sum::<usize>();
    let s = BatchSampler::new(8)
        .unwrap()
        .seed(3)
        .length_buckets(Some(8));
    let batches = s.batches(&data, 0);
    assert_eq!(batches, s.batches(&data, 0));
    assert_eq!(sorted_indices(&batches), (0..64).collect::<Vec<_>>());
    // One pool spans the whole set: each batch is a run of the length-sorted order.
    let spread = |b: &Vec<usize>| {
        b.iter().map(|&i| len(i)).max().unwrap() - b.iter().map(|&i| len(i)).min().unwrap()
    };
    let bucketed: usize = batches.iter().map(spread).sum();
    let random: usize = BatchSampler::new(8)
        .unwrap()
        .seed(3)
        .batches(&data, 0)
        .iter()
        .map(spread)
        .sum();
    assert!(
        bucketed * 4 < random,
        "bucketed spread {bucketed} vs random {random}"
    );
}

#[test]
fn length_sorted_batches_for_encoding() {
    let texts = vec![
        "bb".to_string(),
        "a".to_string(),
        "dddd".to_string(),
        "ccc".to_string(),
    ];
    assert_eq!(
        length_sorted_batches(&texts, 3).unwrap(),
        vec![vec![2, 3, 0], vec![1]]
    );
    assert!(length_sorted_batches(&texts, 0).is_err());
    assert!(BatchSampler::new(0).is_err());
}

#[test]
fn topic_batches_draw_each_full_batch_from_one_topic() {
    let data: Vec<Example> = (0..100)
        .map(|i| Example::pair(format!("q{i}"), format!("p{i}")))
        .collect();
    let topics: Vec<u32> = (0..100).map(|i| (i % 3) as u32).collect(); // 34 + 33 + 33
    let s = BatchSampler::new(8).unwrap().seed(5);
    let batches = s.topic_batches(&data, &topics, 0).unwrap();
    assert_eq!(sorted_indices(&batches), (0..100).collect::<Vec<_>>());
    let pure = batches
        .iter()
        .filter(|b| b.len() == 8 && b.iter().all(|&i| topics[i] == topics[b[0]]))
        .count();
    // 4 full batches per topic; the 2 + 1 + 1 left over make one mixed partial batch.
    assert_eq!(pure, 12);
    assert_eq!(batches.len(), 13);
    assert_eq!(batches, s.topic_batches(&data, &topics, 0).unwrap());
    assert_ne!(batches, s.topic_batches(&data, &topics, 1).unwrap());
    // The batch order is shuffled: topics are interleaved, not one after the other.
    let first_topics: Vec<u32> = batches.iter().map(|b| topics[b[0]]).collect();
    assert!(first_topics.windows(2).any(|w| w[0] != w[1]));
    // drop_last drops only the mixed partial batch.
    let dropped = s
        .clone()
        .drop_last(true)
        .topic_batches(&data, &topics, 0)
        .unwrap();
    assert_eq!(dropped.len(), 12);
    assert!(dropped.iter().all(|b| b.len() == 8));
    // One topic for everything: the plain chunks of the shuffled order.
    let one = vec![0u32; 100];
    assert_eq!(
        sorted_indices(&s.topic_batches(&data, &one, 0).unwrap()),
        (0..100).collect::<Vec<_>>()
    );
}

#[test]
fn topic_batches_keep_no_duplicates_and_reject_a_wrong_topic_count() {
    let data = dupey();
    let topics: Vec<u32> = (0..100).map(|i| (i % 4) as u32).collect();
    let s = BatchSampler::new(6).unwrap().seed(11).no_duplicates(true);
    let batches = s.topic_batches(&data, &topics, 2).unwrap();
    assert_eq!(sorted_indices(&batches), (0..100).collect::<Vec<_>>());
    for b in &batches {
        let mut seen = HashSet::new();
        for &i in b {
            for (_, t) in data[i].columns() {
                assert!(
                    seen.insert(t.to_string()),
                    "text {t:?} twice in batch {b:?}"
                );
            }
        }
    }
    let err = s.topic_batches(&data, &topics[..99], 0).unwrap_err();
    assert!(
        err.to_string().contains("99 topics given for 100 items"),
        "{err}"
    );
}
