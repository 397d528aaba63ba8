//! Mixed-script text (issue 15): Chinese, full-width forms, emoji sequences, combining marks
//! and mixed lines through every reader, the error paths and the statistics. Strings must come
//! back byte for byte; errors must name the right line and column and never split a character.

use std::path::Path;

use embedtune_data::{
    length_sorted_batches, read_documents, read_qrels, BeirDataset, DataError, Dataset,
    DatasetStats, Example, ExampleReader, Format, PairReader, QrelsLayout, ReadOptions, ScoredPair,
};
use serde_json::json;

/// Texts users write: Chinese, English and both; full-width forms; emoji made of several code
/// points (ZWJ family, flag, skin tones, variation selector); decomposed and precomposed
/// accents; curly and CJK quotes; Unicode line separators that are not line ends.
const TEXTS: &[&str] = &[
    "SMSF 的 ESA 在哪里申请？",
    "什么是优惠供款上限？",
    "ＳＭＳＦ　１２３，。？",
    "👨\u{200d}👩\u{200d}👧 family 家庭",
    "🇦🇺 Australia 澳大利亚",
    "👍🏽👋🏿 ok",
    "café vs cafe\u{301}, naïve, Zürich",
    "❤\u{fe0f} heart",
    "他说：“你好”，然后走了。「引号」『二重』",
    "line\u{2028}separator, paragraph\u{2029}separator, NEL\u{85} 行",
    "\u{3000}前后有全角空格\u{3000}",
];

/// Texts that need quoting or escaping: a tab, ASCII quotes, a comma, a newline.
const AWKWARD: &[&str] = &[
    "tab\tinside 和 \"quotes\" 以及, comma",
    "多行\n文本 with \"引号\"",
    "\"开头是引号",
    "结尾是引号\"",
];

fn all_texts() -> Vec<&'static str> {
    TEXTS.iter().chain(AWKWARD).copied().collect()
}

/// Example `i`: anchor, positive and two negatives taken round the list.
fn example(texts: &[&str], i: usize) -> Example {
    let t = |k: usize| texts[(i + k) % texts.len()].to_string();
    Example {
        anchor: t(0),
        positive: t(1),
        negatives: vec![t(2), t(3)],
    }
}

fn read_all(input: &[u8], format: Format, opts: ReadOptions) -> Vec<Example> {
    Dataset::from_reader(ExampleReader::new(input, "in.data", format, opts))
        .unwrap_or_else(|e| panic!("{e}"))
        .items
}

fn example_err(input: &[u8], format: Format, opts: ReadOptions) -> DataError {
    Dataset::from_reader(ExampleReader::new(input, "in.data", format, opts)).unwrap_err()
}

/// JSON with every non-ASCII character written as `\uXXXX` (surrogate pairs above U+FFFF), as
/// Python's `json.dumps` writes by default.
fn ascii_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[test]
fn jsonl_flat_grouped_and_pairs_round_trip_exactly() {
    let texts = all_texts();
    let want: Vec<Example> = (0..texts.len()).map(|i| example(&texts, i)).collect();
    for bom in [false, true] {
        for line_end in ["\n", "\r\n"] {
            for escaped in [false, true] {
                let mut file = String::from(if bom { "\u{feff}" } else { "" });
                for e in &want {
                    let v = json!({"anchor": e.anchor, "positive": e.positive, "negatives": e.negatives});
                    file += &if escaped {
                        ascii_json(&v)
                    } else {
                        v.to_string()
                    };
                    file += line_end;
                }
                let got = read_all(file.as_bytes(), Format::Jsonl, ReadOptions::default());
                assert_eq!(got, want, "bom {bom}, {line_end:?}, escaped {escaped}");
            }
        }
    }

    // Grouped lines: one example per positive, each with the hard negatives; passages as
    // strings or as {"title", "text"} objects (joined by a space).
    let mut file = String::from("\u{feff}");
    let mut want = Vec::new();
    for (i, q) in texts.iter().enumerate() {
        let p1 = texts[(i + 1) % texts.len()];
        let (title, body) = ("标题 🇦🇺", texts[(i + 2) % texts.len()]);
        let negs = [texts[(i + 3) % texts.len()], "ＳＭＳＦ"];
        let v = json!({"query": q, "positive_passages": [p1, {"title": title, "text": body}], "negative_passages": negs});
        file += &format!("{v}\n");
        let joined = format!("{title} {body}").trim().to_string();
        for p in [p1.to_string(), joined] {
            want.push(Example {
                anchor: q.to_string(),
                positive: p,
                negatives: negs.iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    assert_eq!(
        read_all(file.as_bytes(), Format::Jsonl, ReadOptions::default()),
        want
    );

    // Scored pairs.
    let mut file = String::new();
    let mut want = Vec::new();
    for (i, a) in texts.iter().enumerate() {
        let b = texts[(i + 5) % texts.len()];
        file += &format!(
            "{}\n",
            json!({"sentence1": a, "sentence2": b, "score": i as f64 / 4.0})
        );
        want.push(ScoredPair {
            a: a.to_string(),
            b: b.to_string(),
            score: i as f32 / 4.0,
        });
    }
    let got = Dataset::from_reader(PairReader::new(
        file.as_bytes(),
        "pairs.jsonl",
        Format::Jsonl,
        ReadOptions::default(),
    ))
    .unwrap();
    assert_eq!(got.items, want);
}

/// An RFC 4180 field: quoted (inner quotes doubled) when it holds the delimiter, a quote or a
/// line end.
fn field(text: &str, delimiter: char) -> String {
    if text.contains([delimiter, '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[test]
fn csv_and_tsv_round_trip_exactly_with_quotes_tabs_and_newlines() {
    let texts = all_texts();
    let want: Vec<Example> = (0..texts.len()).map(|i| example(&texts, i)).collect();
    for (format, d) in [(Format::Csv, ','), (Format::Tsv, '\t')] {
        for bom in [false, true] {
            for line_end in ["\n", "\r\n"] {
                let mut file = String::from(if bom { "\u{feff}" } else { "" });
                file += &["anchor", "positive", "negative_1", "negative_2"].join(&d.to_string());
                file += line_end;
                for e in &want {
                    let row = [&e.anchor, &e.positive, &e.negatives[0], &e.negatives[1]]
                        .map(|t| field(t, d));
                    file += &row.join(&d.to_string());
                    file += line_end;
                }
                let got = read_all(file.as_bytes(), format, ReadOptions::default());
                assert_eq!(got, want, "{format:?}, bom {bom}, {line_end:?}");
            }
        }
    }

    // Full-width commas and ideographic spaces are text, never delimiters or trimmed.
    let csv = "sentence1,sentence2,label\nＳＭＳＦ，１２３,\u{3000}养老金\u{3000},1\n";
    let got = Dataset::from_reader(PairReader::new(
        csv.as_bytes(),
        "p.csv",
        Format::Csv,
        ReadOptions::default(),
    ))
    .unwrap();
    assert_eq!(
        got.items,
        [ScoredPair {
            a: "ＳＭＳＦ，１２３".into(),
            b: "\u{3000}养老金\u{3000}".into(),
            score: 1.0
        }]
    );

    // TSV without quoting: raw quotes of every kind stay as they are.
    let raw = [
        "他说 \"你好\" 然后走了",
        "\"SMSF\" 的 ESA",
        "“弯引号” 「括号」",
    ];
    let mut tsv = String::from("anchor\tpositive\n");
    for (i, t) in raw.iter().enumerate() {
        tsv += &format!("{t}\t{}\n", raw[(i + 1) % raw.len()]);
    }
    let opts = ReadOptions {
        quoting: false,
        ..ReadOptions::default()
    };
    let got = read_all(tsv.as_bytes(), Format::Tsv, opts);
    let want: Vec<Example> = (0..raw.len())
        .map(|i| Example::pair(raw[i], raw[(i + 1) % raw.len()]))
        .collect();
    assert_eq!(got, want);
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn beir_directory_with_cjk_and_emoji_ids_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Ids of every kind; "café" (precomposed) and "cafe\u{301}" (decomposed) are two ids.
    let docs = [
        ("文档一", Some("养老金"), "SMSF 的 ESA 在哪里申请？"),
        ("👨\u{200d}👩\u{200d}👧", None, "家庭账户 family account"),
        ("🇦🇺-1", Some("ＳＭＳＦ　１２３"), "，。？"),
        ("café", None, "precomposed é"),
        ("cafe\u{301}", None, "decomposed e\u{301}"),
        // Title and text trimmed together, ideographic spaces included (as Python's strip()).
        ("ｄｏｃ", Some("\u{3000}标题\u{3000}"), "正文\u{3000}"),
    ];
    let mut corpus = String::from("\u{feff}");
    for (id, title, text) in &docs {
        let v = match title {
            Some(t) => json!({"_id": id, "title": t, "text": text}),
            None => json!({"_id": id, "text": text}),
        };
        corpus += &format!("{v}\n");
    }
    write(&root.join("corpus.jsonl"), &corpus);
    let queries = [
        ("问题①", "SMSF 的 ESA 在哪里申请？"),
        ("q-👍🏽", "what is a 家庭 account?"),
        ("ｑ１", "café or cafe\u{301}?"),
    ];
    let mut file = String::new();
    for (id, text) in &queries {
        file += &format!("{}\r\n", json!({"_id": id, "text": text}));
    }
    write(&root.join("queries.jsonl"), &file);
    write(
        &root.join("qrels/测试.tsv"),
        "\u{feff}query-id\tcorpus-id\tscore\n问题①\t文档一\t1\n问题①\t🇦🇺-1\t2\n\
         q-👍🏽\t👨\u{200d}👩\u{200d}👧\t1\nｑ１\tcafe\u{301}\t1\nｑ１\t未知\t1\n",
    );

    let ds = BeirDataset::load(root, &ReadOptions::default()).unwrap();
    let got: Vec<(&str, &str)> = ds
        .corpus()
        .iter()
        .map(|d| (d.id.as_str(), d.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("文档一", "养老金 SMSF 的 ESA 在哪里申请？"),
            ("👨\u{200d}👩\u{200d}👧", "家庭账户 family account"),
            ("🇦🇺-1", "ＳＭＳＦ　１２３ ，。？"),
            ("café", "precomposed é"),
            ("cafe\u{301}", "decomposed e\u{301}"),
            ("ｄｏｃ", "标题\u{3000} 正文"),
        ]
    );
    for (id, text) in &queries {
        assert_eq!(ds.query_text(id), Some(*text));
    }
    assert_eq!(ds.doc_text("cafe\u{301}"), Some("decomposed e\u{301}"));
    assert_eq!(ds.splits(), ["测试"]);
    let qrels = ds.qrels("测试").unwrap();
    assert_eq!(qrels.report().header_line, Some(1));
    assert_eq!(qrels.report().unknown_docs.len(), 1);
    assert_eq!(qrels.report().unknown_docs[0].id, "未知");
    let split = ds.ir_split("测试").unwrap();
    let relevant: Vec<(&str, Vec<(&str, i32)>)> = split
        .relevant
        .iter()
        .map(|(q, docs)| {
            (
                q.as_str(),
                docs.iter().map(|(d, g)| (d.as_str(), *g)).collect(),
            )
        })
        .collect();
    assert_eq!(
        relevant,
        [
            // in code point order: q (U+0071) < 问 (U+95EE) < ｑ (U+FF51)
            ("q-👍🏽", vec![("👨\u{200d}👩\u{200d}👧", 1)]),
            ("问题①", vec![("文档一", 1), ("🇦🇺-1", 2)]),
            ("ｑ１", vec![("cafe\u{301}", 1)]),
        ]
    );
    assert_eq!(
        ds.train_pairs("测试").unwrap()[3],
        Example::pair("café or cafe\u{301}?", "decomposed e\u{301}")
    );

    // TREC's space-separated layout with the same ids.
    let trec = "问题① 0 文档一 1\nｑ１ Q0 café 1\n";
    let q = read_qrels(
        trec.as_bytes(),
        "t.qrels",
        &ReadOptions::default(),
        |q| queries.iter().any(|(id, _)| *id == q),
        |d| docs.iter().any(|(id, ..)| *id == d),
    )
    .unwrap();
    assert_eq!(q.report().layout, QrelsLayout::Trec);
    let judged: Vec<(&str, &str)> = q
        .judgements()
        .iter()
        .map(|j| (j.query_id.as_str(), j.doc_id.as_str()))
        .collect();
    assert_eq!(judged, [("问题①", "文档一"), ("ｑ１", "café")]);

    // A repeated emoji id is reported with the id as written.
    let dup = "{\"_id\": \"🇦🇺\", \"text\": \"一\"}\n{\"_id\": \"🇦🇺\", \"text\": \"二\"}\n";
    let err = read_documents(dup.as_bytes(), "c.jsonl", &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::DuplicateId { line: 2, id, first_line: 1, .. } if id == "🇦🇺"),
        "{err:?}"
    );
}

/// The 1-based character column of the first `needle` in `line`.
fn char_column(line: &str, needle: &str) -> usize {
    line[..line.find(needle).unwrap()].chars().count() + 1
}

#[test]
fn json_error_columns_count_characters_on_cjk_lines() {
    // A missing comma after a Chinese value: the parser stops at the quote of "negative".
    let line = "{\"anchor\": \"养老金账户 👨\u{200d}👩\u{200d}👧\", \"positive\": \"退休金\" \"negative\": \"x\"}";
    let input = format!("{{\"anchor\": \"a\", \"positive\": \"b\"}}\n{line}\n");
    let err = example_err(input.as_bytes(), Format::Jsonl, ReadOptions::default());
    let column = char_column(line, "\"negative\"");
    assert_eq!(column, 45); // byte column 74
    assert!(
        matches!(err, DataError::Json { line: 2, column: c, .. } if c == column),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "in.data:2:{column}: invalid JSON: expected `,` or `}}`"
        )),
        "{err}"
    );
    // The same with a BOM before the first line: the BOM is not a column.
    let input = format!("\u{feff}{line}\n");
    let err = example_err(input.as_bytes(), Format::Jsonl, ReadOptions::default());
    assert!(
        matches!(err, DataError::Json { line: 1, column: c, .. } if c == column),
        "{err:?}"
    );
    // A line cut in the middle of a string: the column is the last character, not its last byte.
    let line = "{\"anchor\": \"全角ＳＭＳＦ🇦🇺";
    let err = example_err(line.as_bytes(), Format::Jsonl, ReadOptions::default());
    let chars = line.chars().count();
    assert!(
        matches!(err, DataError::Json { line: 1, column: c, .. } if c == chars),
        "{err:?}"
    );
}

#[test]
fn delimited_errors_on_cjk_lines_name_the_place_without_splitting_characters() {
    let opts = ReadOptions::default;
    // Text after a closing quote: the column counts characters.
    let err = example_err(
        "anchor,positive\n\"养老金\"账户,b\n".as_bytes(),
        Format::Csv,
        opts(),
    );
    assert!(
        matches!(
            err,
            DataError::QuoteSyntax {
                line: 2,
                column: 6,
                ..
            }
        ),
        "{err:?}"
    );
    // Invalid UTF-8 after Chinese text: the column counts bytes (documented).
    let mut input = "anchor\tpositive\n养老金".as_bytes().to_vec();
    input.extend_from_slice(b"\xFF\tb\n");
    let err = example_err(&input, Format::Tsv, opts());
    assert!(
        matches!(
            err,
            DataError::InvalidUtf8 {
                line: 2,
                column: 10,
                ..
            }
        ),
        "{err:?}"
    );
    // A character cut off by the end of the file.
    let mut input = "anchor\tpositive\n养老金\t".as_bytes().to_vec();
    input.extend_from_slice(&"账".as_bytes()[..2]);
    let err = example_err(&input, Format::Tsv, opts());
    assert!(
        matches!(
            err,
            DataError::InvalidUtf8 {
                line: 2,
                column: 11,
                ..
            }
        ),
        "{err:?}"
    );
    // A line limit that falls inside a character.
    let limited = ReadOptions {
        max_line_bytes: 20,
        ..ReadOptions::default()
    };
    let err = example_err(
        "anchor\tpositive\n养老金账户\t退休金\n".as_bytes(),
        Format::Tsv,
        limited,
    );
    assert!(
        matches!(
            err,
            DataError::LineTooLong {
                line: 2,
                limit: 20,
                ..
            }
        ),
        "{err:?}"
    );
    // A bad label quoting 40 characters of a long mixed line: whole characters only.
    let long =
        "退休金账户的转移需要雇主和基金双方确认👨\u{200d}👩\u{200d}👧🇦🇺ＳＭＳＦ，。？".repeat(3);
    let csv = format!("sentence1,sentence2,label\n问题,答案,{long}\n");
    let err = Dataset::from_reader(PairReader::new(
        csv.as_bytes(),
        "p.csv",
        Format::Csv,
        ReadOptions::default(),
    ))
    .unwrap_err();
    let preview: String = long.chars().take(40).collect();
    assert!(
        matches!(&err, DataError::InvalidNumber { line: 2, value, .. } if *value == preview),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!("{preview:?}")), "{err}");
    // Full-width digits are not a number (a typed error, not a panic or a silent 0).
    let csv = "sentence1,sentence2,label\n问题,答案,１\n";
    let err = Dataset::from_reader(PairReader::new(
        csv.as_bytes(),
        "p.csv",
        Format::Csv,
        ReadOptions::default(),
    ))
    .unwrap_err();
    assert!(
        matches!(&err, DataError::InvalidNumber { value, .. } if value == "１"),
        "{err:?}"
    );
    // Column names are matched as written: a full-width header is not "anchor".
    let err = example_err(
        "ＡＮＣＨＯＲ,positive\n问题,答案\n".as_bytes(),
        Format::Csv,
        opts(),
    );
    assert!(
        matches!(err, DataError::MissingField { line: 2, .. }),
        "{err:?}"
    );
    let err = example_err("问题,答案,问题\n".as_bytes(), Format::Csv, opts());
    assert!(
        matches!(&err, DataError::DuplicateColumn { line: 1, column, .. } if column == "问题"),
        "{err:?}"
    );
    // Ideographic spaces only: whitespace, so an empty text.
    let err = example_err(
        "anchor,positive\n问题,\u{3000}\u{3000}\n".as_bytes(),
        Format::Csv,
        opts(),
    );
    assert!(
        matches!(err, DataError::EmptyText { line: 2, .. }),
        "{err:?}"
    );
}

/// Encoding batches sort by length in characters, as sentence-transformers' `encode` sorts by
/// `len(text)` (code points), not by UTF-8 bytes.
#[test]
fn length_sorted_batches_count_characters() {
    let texts = [
        "养老金账户的转移需要确认".to_string(), // 12 characters, 36 bytes
        "twenty ascii chars!!".to_string(),     // 20 characters, 20 bytes
        "👨\u{200d}👩\u{200d}👧".to_string(),   // 5 characters, 18 bytes
    ];
    assert_eq!(
        length_sorted_batches(&texts, 2).unwrap(),
        vec![vec![1, 0], vec![2]]
    );
}

/// Statistics count texts byte for byte: precomposed and decomposed accents are two texts (no
/// Unicode normalisation), whatever the tokenizer makes of them; the lengths are the length
/// function's, not characters or bytes. (Lengths from real tokenizers on mixed-script text are
/// the encoder's tests: `crates/encoder/tests/mixed_script.rs`.)
#[test]
fn stats_compare_texts_byte_for_byte() {
    let data = [
        Example::pair("café", "cafe\u{301}"),
        Example::pair("猫", "猫"),
    ];
    let mut seen = Vec::new();
    let s = DatasetStats::compute(&data, 8, |texts| {
        seen = texts.iter().map(|t| t.to_string()).collect();
        Ok::<_, DataError>(vec![3; texts.len()])
    })
    .unwrap();
    assert_eq!(seen, ["café", "cafe\u{301}", "猫"]);
    assert_eq!((s.texts, s.unique_texts, s.duplicate_texts), (4, 3, 1));
    assert_eq!(s.examples_with_repeated_text, 1);
    assert_eq!((s.tokens.min, s.tokens.max), (3, 3));
}
