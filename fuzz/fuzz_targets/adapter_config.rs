//! PEFT's `adapter_config.json` through `SentenceEncoder::load_lora_adapter` onto a tiny base
//! model, with a matching `adapter_model.safetensors` (rank 4 on query and value): never
//! panics, never allocates by a rank the weights do not hold; every error names the adapter
//! directory's files.
#![no_main]

use std::sync::OnceLock;

use burn_ndarray::NdArray;
use embedtune_encoder::testing::tiny_tokenizer;
use embedtune_encoder::{LoraConfig, SentenceEncoder, TransformerConfig};
use libfuzzer_sys::fuzz_target;

include!("scratch.rs");

type B = NdArray<f32>;

/// The base model and a directory holding its saved adapters.
fn fixture() -> &'static (SentenceEncoder<B>, PathBuf) {
    static FIXTURE: OnceLock<(SentenceEncoder<B>, PathBuf)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let config = TransformerConfig::tiny_bert(100, 8, 1, 2).unwrap();
        let base =
            SentenceEncoder::<B>::random(config, tiny_tokenizer(16).unwrap(), &Default::default())
                .unwrap();
        let lora = LoraConfig {
            r: 4,
            alpha: 8.0,
            dropout: 0.0,
            target_modules: vec!["query".into(), "value".into()],
        };
        let dir = scratch("adapter_config").join("adapter");
        base.clone()
            .with_lora(lora, 1)
            .unwrap()
            .save_lora_adapter(&dir)
            .unwrap();
        (base, dir)
    })
}

fn seeds() {
    let (_, dir) = fixture();
    let saved = std::fs::read(dir.join("adapter_config.json")).unwrap();
    let peft = br#"{"alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "sentence-transformers/all-MiniLM-L6-v2", "bias": "none", "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "layers_pattern": null, "layers_to_transform": null, "lora_alpha": 8, "lora_dropout": 0.1, "modules_to_save": null, "peft_type": "LORA", "r": 4, "rank_pattern": {}, "revision": null, "target_modules": ["value", "query"], "task_type": "FEATURE_EXTRACTION", "use_dora": false, "use_rslora": false}"#;
    write_seeds(&[
        ("saved".into(), saved),
        ("peft-style".into(), peft.to_vec()),
    ]);
}

fuzz_target!(
    init: {
        seeds();
    },
    |data: &[u8]| {
    let (base, dir) = fixture();
    let path = dir.join("adapter_config.json");
    std::fs::write(&path, data).unwrap();
    match base.clone().load_lora_adapter(dir) {
        Ok(model) => {
            let config = model.lora_config().expect("adapters attached");
            assert_eq!(config.r, 4);
        }
        Err(e) => assert_names(&e, dir),
    }
});
