//! Every bad-input class gives a typed error with the file and the 1-based line.

use embedtune_data::{
    read_documents, read_examples, read_qrels, DataError, Dataset, ExampleReader, Format,
    PairReader, ReadOptions,
};

/// The first error reading `input` as Examples.
fn example_err(input: &[u8], format: Format) -> DataError {
    Dataset::from_reader(ExampleReader::new(
        input,
        "in.data",
        format,
        ReadOptions::default(),
    ))
    .unwrap_err()
}

fn pair_err(input: &[u8], format: Format) -> DataError {
    Dataset::from_reader(PairReader::new(
        input,
        "in.data",
        format,
        ReadOptions::default(),
    ))
    .unwrap_err()
}

const OK: &str = "{\"anchor\": \"a\", \"positive\": \"b\"}\n";

#[test]
fn invalid_json() {
    let input = format!("{OK}{OK}{{\"anchor\": \"a\", \"positive\": \"b\"\n");
    let err = example_err(input.as_bytes(), Format::Jsonl);
    assert!(
        matches!(
            err,
            DataError::Json {
                line: 3,
                column: 31,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("in.data:3:31: invalid JSON: EOF while parsing an object"),
        "{err}"
    );
}

#[test]
fn json_line_that_is_not_an_object() {
    let input = format!("{OK}[1, 2]\n");
    let err = example_err(input.as_bytes(), Format::Jsonl);
    assert!(
        matches!(
            err,
            DataError::NotAnObject {
                line: 2,
                found: "an array",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_fields() {
    let err = example_err(
        format!("{OK}{{\"positive\": \"b\"}}\n").as_bytes(),
        Format::Jsonl,
    );
    assert!(
        matches!(&err, DataError::MissingField { line: 2, field, .. } if field == "\"anchor\" or \"query\""),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "in.data:2: missing field \"anchor\" or \"query\""
    );

    let err = example_err(b"{\"positive_passages\": [\"p\"]}\n", Format::Jsonl);
    assert!(
        matches!(&err, DataError::MissingField { line: 1, field, .. } if field == "\"query\""),
        "{err:?}"
    );

    let err = example_err(
        b"{\"query\": \"q\", \"positive_passages\": [{\"title\": \"t\"}]}\n",
        Format::Jsonl,
    );
    assert!(
        matches!(&err, DataError::MissingField { line: 1, field, .. } if field == "\"positive_passages[0].text\""),
        "{err:?}"
    );

    let err = pair_err(
        b"{\"sentence1\": \"a\", \"sentence2\": \"b\"}\n",
        Format::Jsonl,
    );
    assert!(
        matches!(&err, DataError::MissingField { line: 1, field, .. } if field == "\"label\" or \"score\""),
        "{err:?}"
    );

    // A CSV without the column.
    let err = example_err(b"anchor,negative\nx,y\n", Format::Csv);
    assert!(
        matches!(&err, DataError::MissingField { line: 2, field, .. } if field == "\"positive\""),
        "{err:?}"
    );
}

#[test]
fn wrongly_typed_fields() {
    let cases: [(&str, &str, &str); 6] = [
        (r#"{"anchor": "a", "positive": 3}"#, "positive", "a number"),
        (
            r#"{"anchor": ["a"], "positive": "b"}"#,
            "anchor",
            "an array",
        ),
        (
            r#"{"anchor": "a", "positive": "b", "negatives": "n"}"#,
            "negatives",
            "a string",
        ),
        (
            r#"{"anchor": "a", "positive": "b", "negatives": ["n", 2]}"#,
            "negatives[1]",
            "a number",
        ),
        (
            r#"{"query": "q", "positive_passages": "p"}"#,
            "positive_passages",
            "a string",
        ),
        (
            r#"{"query": "q", "positive_passages": ["p", {"text": 5}]}"#,
            "positive_passages[1].text",
            "a number",
        ),
    ];
    for (line, want_field, want_found) in cases {
        let input = format!("{OK}{OK}{line}\n");
        let err = example_err(input.as_bytes(), Format::Jsonl);
        match &err {
            DataError::WrongType {
                line: 3,
                field,
                found,
                ..
            } => {
                assert_eq!((field.as_str(), *found), (want_field, want_found), "{line}")
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    // A label that is not a number.
    let err = pair_err(
        b"{\"sentence1\": \"a\", \"sentence2\": \"b\", \"label\": \"yes\"}\n",
        Format::Jsonl,
    );
    assert!(
        matches!(&err, DataError::InvalidNumber { line: 1, field, value, .. } if field == "label" && value == "yes"),
        "{err:?}"
    );
    let err = pair_err(
        b"{\"sentence1\": \"a\", \"sentence2\": \"b\", \"score\": [1]}\n",
        Format::Jsonl,
    );
    assert!(
        matches!(
            &err,
            DataError::WrongType {
                line: 1,
                found: "an array",
                ..
            }
        ),
        "{err:?}"
    );
    let err = pair_err(
        b"sentence1,sentence2,score\na,b,0.5\nc,d,NaN\n",
        Format::Csv,
    );
    assert!(
        matches!(
            &err,
            DataError::InvalidNumber {
                line: 3,
                expected: "a finite number",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn empty_texts_are_errors_by_default() {
    let err = example_err(
        format!("{OK}{{\"anchor\": \"a\", \"positive\": \" \\t\"}}\n").as_bytes(),
        Format::Jsonl,
    );
    assert!(
        matches!(&err, DataError::EmptyText { line: 2, field, .. } if field == "positive"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "in.data:2: field \"positive\" is empty");

    let err = example_err(
        b"{\"query\": \"q\", \"positive_passages\": []}\n",
        Format::Jsonl,
    );
    assert!(
        matches!(&err, DataError::EmptyText { line: 1, field, .. } if field == "positive_passages"),
        "{err:?}"
    );

    let err = example_err(b"query\tpositive\tnegative\nq\tp\tn\nq\tp\t\n", Format::Tsv);
    assert!(
        matches!(&err, DataError::EmptyText { line: 3, field, .. } if field == "negative"),
        "{err:?}"
    );
}

#[test]
fn invalid_utf8() {
    let mut input = OK.as_bytes().to_vec();
    input.extend_from_slice(b"{\"anchor\": \"caf\xC3\", \"positive\": \"b\"}\n");
    let err = example_err(&input, Format::Jsonl);
    assert!(
        matches!(
            err,
            DataError::InvalidUtf8 {
                line: 2,
                column: 16,
                ..
            }
        ),
        "{err:?}"
    );

    let err = example_err(b"anchor,positive\n\xFF,b\n", Format::Csv);
    assert!(
        matches!(
            err,
            DataError::InvalidUtf8 {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn utf8_bom_in_the_middle_of_a_file() {
    // At the start it is skipped (see formats.rs); after a concatenation it is reported.
    let input = format!("\u{feff}{OK}{OK}\u{feff}{OK}");
    let err = example_err(input.as_bytes(), Format::Jsonl);
    assert!(
        matches!(err, DataError::UnexpectedBom { line: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn crlf_line_numbers_count_physical_lines() {
    let input = "{\"anchor\": \"a\", \"positive\": \"b\"}\r\n\r\n{\"anchor\": \"a\"}\r\n";
    let err = example_err(input.as_bytes(), Format::Jsonl);
    assert!(
        matches!(&err, DataError::MissingField { line: 3, field, .. } if field == "\"positive\""),
        "{err:?}"
    );
    // A CR before the last line's missing newline is still a line end.
    let ok = Dataset::from_reader(ExampleReader::new(
        &b"anchor\tpositive\r\na\tb\r"[..],
        "x.tsv",
        Format::Tsv,
        ReadOptions::default(),
    ))
    .unwrap();
    assert_eq!(ok.items[0].positive, "b");
}

#[test]
fn csv_row_with_wrong_number_of_fields() {
    // The second record spans lines 2-3; the bad one starts on line 4.
    let input = b"anchor,positive\na,\"two\nlines\"\nb,c,d\n";
    let err = example_err(input, Format::Csv);
    assert!(
        matches!(
            err,
            DataError::FieldCount {
                line: 4,
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "in.data:4: expected 2 fields (as in the header), found 3"
    );
    let err = example_err(b"anchor\tpositive\nonly-one\n", Format::Tsv);
    assert!(
        matches!(
            err,
            DataError::FieldCount {
                line: 2,
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn csv_quote_errors() {
    let err = example_err(b"anchor,positive\na,b\nc,\"never\nclosed\n", Format::Csv);
    assert!(
        matches!(err, DataError::UnterminatedQuote { line: 3, .. }),
        "{err:?}"
    );
    let err = example_err(b"anchor,positive\n\"a\"x,b\n", Format::Csv);
    assert!(
        matches!(
            err,
            DataError::QuoteSyntax {
                line: 2,
                column: 4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn csv_header_problems() {
    let err = example_err(b"", Format::Csv);
    assert!(matches!(err, DataError::MissingHeader { .. }), "{err:?}");
    let err = example_err(b"\nanchor,positive,Anchor\n", Format::Csv);
    assert!(
        matches!(&err, DataError::DuplicateColumn { line: 2, column, .. } if column == "anchor"),
        "{err:?}"
    );
}

#[test]
fn overlong_line() {
    let opts = ReadOptions {
        max_line_bytes: 64,
        ..ReadOptions::default()
    };
    let input = format!(
        "{OK}{{\"anchor\": \"{}\", \"positive\": \"b\"}}\n",
        "x".repeat(100)
    );
    let err = Dataset::from_reader(ExampleReader::new(
        input.as_bytes(),
        "in.data",
        Format::Jsonl,
        opts,
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LineTooLong {
                line: 2,
                limit: 64,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn beir_documents_and_qrels_errors() {
    let opts = ReadOptions::default();
    let corpus = b"{\"_id\": \"d1\", \"text\": \"x\"}\n{\"_id\": \"d2\", \"text\": \"y\"}\n{\"_id\": \"d1\", \"text\": \"z\"}\n";
    let err = read_documents(&corpus[..], "corpus.jsonl", &opts).unwrap_err();
    assert!(
        matches!(&err, DataError::DuplicateId { line: 3, first_line: 1, id, .. } if id == "d1"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "corpus.jsonl:3: duplicate id \"d1\" (first seen on line 1)"
    );

    let err = read_documents(
        &b"{\"_id\": \"d1\", \"title\": \"t\"}\n"[..],
        "c.jsonl",
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DataError::MissingField { line: 1, field, .. } if field == "\"text\""),
        "{err:?}"
    );
    let err =
        read_documents(&b"{\"_id\": 1.5, \"text\": \"t\"}\n"[..], "c.jsonl", &opts).unwrap_err();
    assert!(
        matches!(&err, DataError::WrongType { line: 1, field, .. } if field == "_id"),
        "{err:?}"
    );
    let err = read_documents(
        &b"{\"_id\": \"a\", \"title\": \" \", \"text\": \"\"}\n"[..],
        "c.jsonl",
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(err, DataError::EmptyText { line: 1, .. }),
        "{err:?}"
    );

    let all = |_: &str| true;
    let err = read_qrels(
        &b"query-id\tcorpus-id\tscore\nq\td\t1\nq\td\thigh\n"[..],
        "qrels.tsv",
        &opts,
        all,
        all,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DataError::InvalidNumber { line: 3, value, .. } if value == "high"),
        "{err:?}"
    );
    let err = read_qrels(
        &b"query-id\tcorpus-id\tscore\nq\td\n"[..],
        "qrels.tsv",
        &opts,
        all,
        all,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            DataError::FieldCount {
                line: 2,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = read_qrels(
        &b"query-id\tcorpus-id\nq\td\n"[..],
        "qrels.tsv",
        &opts,
        all,
        all,
    )
    .unwrap_err();
    assert!(
        matches!(err, DataError::MissingField { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn missing_file_and_path_in_messages() {
    let path = crate::common::fixture("does-not-exist.jsonl");
    let err = read_examples(&path, &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::Io { path: p, .. } if *p == path),
        "{err:?}"
    );

    // A real file's path is in the message.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(&file, format!("{OK}{{\"anchor\": 1}}\n")).unwrap();
    let err = read_examples(&file, &ReadOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: field \"anchor\" should be a string, found a number",
            file.display()
        )
    );
}

/// Found by the `delimited` fuzz target (a hang on the empty input): a streaming reader whose
/// CSV / TSV header is missing or bad yielded the same error forever. It must end after it.
#[test]
fn regression_header_error_ends_the_stream() {
    for (input, format) in [
        (&b""[..], Format::Csv),
        (&b"\n\n"[..], Format::Tsv),
        (&b"a,a\nx,y\nz,w\n"[..], Format::Csv),
    ] {
        let items: Vec<_> = ExampleReader::new(input, "h.csv", format, ReadOptions::default())
            .take(5)
            .collect();
        assert_eq!(items.len(), 1, "{:?}", String::from_utf8_lossy(input));
        assert!(matches!(
            items[0],
            Err(DataError::MissingHeader { .. } | DataError::DuplicateColumn { line: 1, .. })
        ));
        let items: Vec<_> = PairReader::new(input, "h.csv", format, ReadOptions::default())
            .take(5)
            .collect();
        assert_eq!(items.len(), 1);
    }
}
