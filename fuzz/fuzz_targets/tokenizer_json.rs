//! `tokenizer.json` through `TextTokenizer::from_file` and then tokenising: never panics; every
//! error names the file; every id produced is at most `max_token_id` (what the model's
//! vocabulary check at load relies on) and every row fits `max_seq_len`.
#![no_main]

use embedtune_encoder::testing::tiny_tokenizer;
use embedtune_encoder::TextTokenizer;
use libfuzzer_sys::fuzz_target;

include!("scratch.rs");

const MAX_SEQ_LEN: usize = 12;

fn seeds() {
    let mut out = vec![(
        "tiny-wordpiece".to_string(),
        tiny_tokenizer(16)
            .unwrap()
            .inner()
            .to_string(false)
            .unwrap()
            .into_bytes(),
    )];
    for model in ["all-MiniLM-L6-v2", "tiny-xlm-roberta-random"] {
        if let Some(bytes) = shared_file(&format!("models/{model}/tokenizer.json")) {
            out.push((model.to_string(), bytes));
        }
    }
    write_seeds(&out);
}

fuzz_target!(
    init: {
        seeds();
    },
    |data: &[u8]| {
    thread_local! {
        static DIR: PathBuf = scratch("tokenizer_json");
    }
    DIR.with(|dir| {
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, data).unwrap();
        let tokenizer = match TextTokenizer::from_file(&path, MAX_SEQ_LEN, 0) {
            Ok(t) => t,
            Err(e) => return assert_names(&e, &path),
        };
        let max_id = tokenizer.max_token_id();
        let texts = ["hello world", "Ünïcödé 日本語 text, with punctuation!", "a"];
        for prompt in [None, Some("query: ")] {
            match tokenizer.batch(&texts, prompt) {
                Ok(batch) => {
                    assert!(batch.seq_len <= MAX_SEQ_LEN, "{} tokens", batch.seq_len);
                    assert!(batch.prompt_len <= MAX_SEQ_LEN);
                    for (&id, &m) in batch.input_ids.iter().zip(&batch.attention_mask) {
                        if m != 0 {
                            assert!(
                                max_id.is_some_and(|max| id as u64 <= u64::from(max)),
                                "id {id} past max_token_id {max_id:?}"
                            );
                        }
                    }
                }
                Err(e) => assert_names(&e, &path),
            }
        }
    });
});
