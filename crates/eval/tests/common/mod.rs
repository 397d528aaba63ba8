//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use embedtune_eval::{Document, Hit};

/// The shared assets folder named by `EMBEDTUNE_SHARED`, or `None` after printing why the
/// calling test is skipped.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os("EMBEDTUNE_SHARED").map(PathBuf::from) {
        Some(dir) if dir.is_dir() => Some(dir),
        Some(dir) => {
            eprintln!(
                "skipping {test}: EMBEDTUNE_SHARED={} is not a directory",
                dir.display()
            );
            None
        }
        None => {
            eprintln!("skipping {test}: EMBEDTUNE_SHARED is not set");
            None
        }
    }
}

pub fn doc(id: &str, text: &str) -> Document {
    Document {
        id: id.into(),
        text: text.into(),
    }
}

/// Documents `prefix0..prefix{n-1}` with placeholder texts.
pub fn docs(prefix: &str, n: usize) -> Vec<Document> {
    (0..n)
        .map(|i| doc(&format!("{prefix}{i}"), &format!("text {prefix}{i}")))
        .collect()
}

pub fn hit(id: &str, score: f32) -> Hit {
    Hit {
        id: id.into(),
        score,
    }
}

/// qrels from `(query, doc, grade)` triples.
pub fn qrels(rows: &[(&str, &str, i32)]) -> BTreeMap<String, BTreeMap<String, i32>> {
    let mut map: BTreeMap<String, BTreeMap<String, i32>> = BTreeMap::new();
    for &(q, d, g) in rows {
        map.entry(q.into()).or_default().insert(d.into(), g);
    }
    map
}
