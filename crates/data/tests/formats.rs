//! Each format read from the committed fixtures.

use std::io::Read;

use embedtune_data::{
    read_examples, read_pairs, Dataset, EmptyTextPolicy, Example, ExampleReader, Format,
    ReadOptions,
};

use crate::common::fixture;

fn ex(anchor: &str, positive: &str, negatives: &[&str]) -> Example {
    Example {
        anchor: anchor.into(),
        positive: positive.into(),
        negatives: negatives.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn grouped_jsonl_one_example_per_positive() {
    let data = read_examples(fixture("grouped.jsonl"), &ReadOptions::default()).unwrap();
    let negs = ["Snow is frozen.", "Deserts are dry.", "The sun is a star."];
    assert_eq!(
        data.items,
        vec![
            ex(
                "what causes rain",
                "Rain forms when water vapour condenses.",
                &negs
            ),
            ex("what causes rain", "Clouds release water as rain.", &negs),
            ex(
                "capital of france",
                "Paris Paris is the capital of France.",
                &["Lyon is a city."]
            ),
            ex("no negatives here", "A lone positive.", &[]),
        ]
    );
    assert_eq!(data.report.lines, 4);
    assert_eq!(data.report.records, 4);
    assert_eq!(data.report.skipped_empty, 0);
}

#[test]
fn grouped_jsonl_first_k_negatives() {
    let opts = ReadOptions {
        max_negatives: Some(1),
        ..ReadOptions::default()
    };
    let data = read_examples(fixture("grouped.jsonl"), &opts).unwrap();
    assert_eq!(data.items[0].negatives, ["Snow is frozen."]);
    assert_eq!(data.items[1].negatives, ["Snow is frozen."]);
    let none = ReadOptions {
        max_negatives: Some(0),
        ..ReadOptions::default()
    };
    let data = read_examples(fixture("grouped.jsonl"), &none).unwrap();
    assert!(data.items.iter().all(|e| e.negatives.is_empty()));
}

#[test]
fn flat_jsonl_anchor_or_query_negative_or_negatives() {
    let data = read_examples(fixture("flat.jsonl"), &ReadOptions::default()).unwrap();
    assert_eq!(
        data.items,
        vec![
            ex("a cat", "a feline", &["a dog"]),
            ex("q two", "p two", &["n1", "n2", "n3"]),
            ex("just a pair", "its positive", &[]),
        ]
    );
    let two = ReadOptions {
        max_negatives: Some(2),
        ..ReadOptions::default()
    };
    let data = read_examples(fixture("flat.jsonl"), &two).unwrap();
    assert_eq!(data.items[1].negatives, ["n1", "n2"]);
}

#[test]
fn scored_pairs_jsonl_label_score_bool() {
    let data = read_pairs(fixture("pairs.jsonl"), &ReadOptions::default()).unwrap();
    let got: Vec<(&str, &str, f32)> = data
        .items
        .iter()
        .map(|p| (p.a.as_str(), p.b.as_str(), p.score))
        .collect();
    assert_eq!(
        got,
        vec![
            ("A man is eating.", "A man eats food.", 1.0),
            ("A man is eating.", "A plane is landing.", 0.0),
            ("Kids play.", "Children are playing.", 0.85),
            ("Yes?", "No.", 0.0),
        ]
    );
}

#[test]
fn tsv_with_quotes_tabs_and_newlines() {
    let data = read_examples(fixture("train.tsv"), &ReadOptions::default()).unwrap();
    assert_eq!(
        data.items,
        vec![
            ex("first query", "first positive", &["first negative"]),
            ex(
                "quoted\twith tab",
                "multi\nline \"positive\"",
                &["plain negative"]
            ),
            ex("last query", "last positive", &["neg, with comma"]),
        ]
    );
    assert_eq!(data.report.lines, 6);
}

#[test]
fn csv_with_crlf_and_numbered_negative_columns() {
    let data = read_examples(fixture("train.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(
        data.items,
        vec![
            // The CRLF inside the quoted field becomes "\n".
            ex("how tall", "very, very tall", &["short", "medium\nsized"]),
            ex("what colour", "blue", &["red", "green"]),
        ]
    );
}

#[test]
fn csv_scored_pairs() {
    let data = read_pairs(fixture("pairs.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(
        (
            data.items[0].a.as_str(),
            data.items[0].b.as_str(),
            data.items[0].score
        ),
        ("A, B", "C", 0.5)
    );
    assert_eq!(data.items[1].score, 1.0);
}

#[test]
fn quoting_off_keeps_raw_quotes_in_tsv() {
    let tsv = "anchor\tpositive\n\"Hi,\" she said\the said \"no\"\n";
    let opts = ReadOptions {
        quoting: false,
        ..ReadOptions::default()
    };
    let data = Dataset::from_reader(ExampleReader::new(
        tsv.as_bytes(),
        "raw.tsv",
        Format::Tsv,
        opts,
    ))
    .unwrap();
    assert_eq!(
        data.items,
        vec![ex("\"Hi,\" she said", "he said \"no\"", &[])]
    );
    // With RFC 4180 quoting the same line is a quote error.
    let err = Dataset::from_reader(ExampleReader::new(
        tsv.as_bytes(),
        "raw.tsv",
        Format::Tsv,
        ReadOptions::default(),
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "raw.tsv:2:6: unexpected character after closing quote"
    );
}

#[test]
fn bom_and_crlf_read_like_plain_files() {
    for name in ["flat.jsonl", "grouped.jsonl", "train.tsv", "pairs.jsonl"] {
        let mut plain = String::new();
        std::fs::File::open(fixture(name))
            .unwrap()
            .read_to_string(&mut plain)
            .unwrap();
        let crlf = format!("\u{feff}{}", plain.replace('\n', "\r\n"));
        let format = Format::from_path(&fixture(name)).unwrap();
        let a = Dataset::from_reader(ExampleReader::new(
            plain.as_bytes(),
            name,
            format,
            ReadOptions::default(),
        ));
        let b = Dataset::from_reader(ExampleReader::new(
            crlf.as_bytes(),
            name,
            format,
            ReadOptions::default(),
        ));
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(a.items, b.items, "{name}"),
            // pairs.jsonl is not an Example file: both must fail the same way.
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}"),
            (a, b) => panic!("{name}: {a:?} vs {b:?}"),
        }
    }
}

#[test]
fn skip_policy_counts_skipped_records() {
    let jsonl = r#"{"anchor": "a", "positive": "b"}
{"anchor": "  ", "positive": "b"}
{"query": "q", "positive_passages": ["p1", ""], "negative_passages": []}
{"anchor": "c", "positive": "d", "negatives": ["x", "\t"]}
{"anchor": "e", "positive": "f"}
"#;
    let opts = ReadOptions {
        empty_text: EmptyTextPolicy::Skip,
        ..ReadOptions::default()
    };
    let data = Dataset::from_reader(ExampleReader::new(
        jsonl.as_bytes(),
        "m.jsonl",
        Format::Jsonl,
        opts,
    ))
    .unwrap();
    assert_eq!(data.items, vec![ex("a", "b", &[]), ex("e", "f", &[])]);
    assert_eq!(data.report.skipped_empty, 3);
    assert_eq!(data.report.records, 2);
}

#[test]
fn streaming_reader_goes_on_after_a_bad_record() {
    let jsonl = "{\"anchor\": \"a\", \"positive\": \"b\"}\nnot json\n{\"anchor\": \"c\", \"positive\": \"d\"}\n";
    let items: Vec<_> = ExampleReader::new(
        jsonl.as_bytes(),
        "s.jsonl",
        Format::Jsonl,
        ReadOptions::default(),
    )
    .collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    assert!(items[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .starts_with("s.jsonl:2:"));
}

#[test]
fn streaming_a_large_input_keeps_memory_bounded() {
    // A generated stream of 200k lines (~12 MB) read without ever holding it: the reader is
    // fed from an iterator-backed Read, and only counts are kept.
    struct Gen {
        next: usize,
        total: usize,
        buf: Vec<u8>,
        pos: usize,
    }
    impl Read for Gen {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.pos == self.buf.len() {
                if self.next == self.total {
                    return Ok(0);
                }
                self.buf = format!(
                    "{{\"anchor\": \"query {}\", \"positive\": \"passage number {}\"}}\n",
                    self.next, self.next
                )
                .into_bytes();
                self.pos = 0;
                self.next += 1;
            }
            let n = out.len().min(self.buf.len() - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }
    let total = 200_000;
    let gen = Gen {
        next: 0,
        total,
        buf: Vec::new(),
        pos: 0,
    };
    let mut reader = ExampleReader::new(
        std::io::BufReader::new(gen),
        "gen.jsonl",
        Format::Jsonl,
        ReadOptions::default(),
    );
    let mut count = 0;
    let mut last = None;
    for item in reader.by_ref() {
        let e = item.unwrap();
        count += 1;
        last = Some(e.anchor);
    }
    assert_eq!(count, total);
    assert_eq!(last.as_deref(), Some("query 199999"));
    assert_eq!(reader.report().lines, total);
}

#[test]
fn format_from_extension() {
    use std::path::Path;
    assert_eq!(
        Format::from_path(Path::new("a/b.JSONL")).unwrap(),
        Format::Jsonl
    );
    assert_eq!(Format::from_path(Path::new("b.tsv")).unwrap(), Format::Tsv);
    assert_eq!(Format::from_path(Path::new("b.csv")).unwrap(), Format::Csv);
    let err = Format::from_path(Path::new("b.parquet")).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("b.parquet: unknown data format"));
}
