//! BEIR corpus / queries JSONL and qrels TSV: never panics; pairs and eval triples agree
//! with the kept judgements.
#![no_main]

use embedtune_data::{read_documents, BeirDataset};
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let (opts, rest) = split_options(data);
    // Three files separated by a 0x00 byte: corpus, queries, qrels.
    let mut parts = rest.splitn(3, |&b| b == 0);
    let (corpus, queries, qrels) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let corpus = match read_documents(corpus, "corpus.jsonl", &opts) {
        Ok((docs, _)) => docs,
        Err(e) => return check_error(&e),
    };
    let queries = match read_documents(queries, "queries.jsonl", &opts) {
        Ok((docs, _)) => docs,
        Err(e) => return check_error(&e),
    };
    let mut ds = BeirDataset::new(corpus, queries);
    let qrels = match ds.add_qrels("split", qrels, "qrels/split.tsv", &opts) {
        Ok(q) => q.clone(),
        Err(e) => return check_error(&e),
    };
    let r = qrels.report();
    assert_eq!(
        r.rows,
        r.relevant + r.not_relevant + r.duplicates + r.unknown_queries.len() + r.unknown_docs.len()
    );
    let pairs = ds.train_pairs("split").expect("split exists");
    assert_eq!(pairs.len(), qrels.judgements().len());
    let split = ds.ir_split("split").expect("split exists");
    assert_eq!(split.queries.len(), qrels.num_queries());
    assert!(split
        .queries
        .iter()
        .all(|q| split.relevant.contains_key(&q.id)));
});
