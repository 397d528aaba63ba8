//! The sentence-transformers files of a model directory (`StMeta::load`) and `config.json`
//! (`TransformerConfig`): never panics; every error names its file; what loads is consistent.
//!
//! Input: up to six files separated by `\0`, in this order: `config.json`, `modules.json`,
//! `1_Pooling/config.json`, `sentence_bert_config.json`, `config_sentence_transformers.json`,
//! `tokenizer_config.json`. An empty part leaves that file out.
#![no_main]

use embedtune_encoder::{StMeta, TransformerConfig};
use libfuzzer_sys::fuzz_target;

include!("scratch.rs");

const FILES: [&str; 6] = [
    "config.json",
    "modules.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
];

fn seeds() {
    let mut out = Vec::new();
    for model in ["all-MiniLM-L6-v2", "tiny-xlm-roberta-random"] {
        let parts: Vec<Vec<u8>> = FILES
            .iter()
            .map(|f| shared_file(&format!("models/{model}/{f}")).unwrap_or_default())
            .collect();
        out.push((model.to_string(), parts.join(&b'\0')));
    }
    // a saved tiny model: legacy pooling flags, a plain transformers directory (config only)
    let config = TransformerConfig::tiny_bert(100, 8, 1, 2).unwrap();
    out.push((
        "tiny-config-only".into(),
        config.raw.to_string().into_bytes(),
    ));
    write_seeds(&out);
}

fuzz_target!(
    init: {
        seeds();
    },
    |data: &[u8]| {
    thread_local! {
        static DIR: PathBuf = scratch("st_config");
    }
    DIR.with(|dir| {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
        let parts: Vec<&[u8]> = data.splitn(FILES.len(), |&b| b == 0).collect();
        for (name, part) in FILES.iter().zip(&parts) {
            if !part.is_empty() {
                std::fs::write(dir.join(name), part).unwrap();
            }
        }
        let config_path = dir.join("config.json");
        if let Some(text) = parts.first().and_then(|p| std::str::from_utf8(p).ok()) {
            match TransformerConfig::from_json_str(text, &config_path) {
                Ok(c) => {
                    assert!(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0);
                    assert!(c.pad_token_id < c.vocab_size);
                    assert!(c.layer_norm_eps > 0.0 && c.layer_norm_eps.is_finite());
                    assert!(c.head_dim() > 0);
                }
                Err(e) => assert_names(&e, &config_path),
            }
        }
        match StMeta::load(dir, |p| Ok(TransformerConfig::load(p)?.max_position_embeddings)) {
            Ok(meta) => {
                assert!(meta.max_seq_length >= 2);
                assert!(!meta.pooling.modes.is_empty());
                let positions = TransformerConfig::load(&config_path)
                    .expect("StMeta loaded, so config.json did")
                    .max_position_embeddings;
                assert!(meta.max_seq_length <= positions);
            }
            // the file may lie under a directory that modules.json points elsewhere
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains(".json") || message.contains(&*dir.to_string_lossy()), "{message}");
            }
        }
    });
});
