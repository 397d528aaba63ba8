//! `model.safetensors`: the header, the tensor table and the tensors, through
//! `read_safetensors` (every tensor as f32) and through `SentenceEncoder::load` of a tiny model
//! directory whose weights are the input. Never panics; allocations stay bounded by the file;
//! every error names the file.
#![no_main]

use std::sync::OnceLock;

use burn_ndarray::NdArray;
use embedtune_encoder::testing::tiny_tokenizer;
use embedtune_encoder::{read_safetensors, EncoderError, SentenceEncoder, TransformerConfig};
use libfuzzer_sys::fuzz_target;

include!("scratch.rs");

type B = NdArray<f32>;

/// A saved tiny model (vocabulary 100, width 8, one layer, two heads): its config, tokenizer
/// and ST files stay, the input replaces its weights.
fn model_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("safetensors_header").join("model");
        let config = TransformerConfig::tiny_bert(100, 8, 1, 2).unwrap();
        let model =
            SentenceEncoder::<B>::random(config, tiny_tokenizer(16).unwrap(), &Default::default())
                .unwrap();
        model.save(&dir).unwrap();
        dir
    })
}

/// The header alone (8-byte length and JSON) of a shared model's weights.
fn header_of(rel: &str) -> Option<Vec<u8>> {
    let bytes = shared_file(rel)?;
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    Some(bytes.get(..8 + n)?.to_vec())
}

fn seeds() {
    let mut out = vec![(
        "tiny-model".to_string(),
        std::fs::read(model_dir().join("model.safetensors")).unwrap(),
    )];
    for model in ["all-MiniLM-L6-v2", "tiny-xlm-roberta-random"] {
        if let Some(h) = header_of(&format!("models/{model}/model.safetensors")) {
            out.push((format!("{model}-header"), h));
        }
    }
    write_seeds(&out);
}

fuzz_target!(
    init: {
        seeds();
    },
    |data: &[u8]| {
    let dir = model_dir();
    let path = dir.join("model.safetensors");
    std::fs::write(&path, data).unwrap();
    match read_safetensors(&path) {
        Ok(tensors) => {
            for t in &tensors {
                assert_eq!(t.shape.iter().product::<usize>(), t.values.len());
                assert!(t.values.iter().all(|v| v.is_finite()));
            }
        }
        Err(e) => assert_names(&e, &path),
    }
    match SentenceEncoder::<B>::load(dir, &Default::default()) {
        Ok(model) => match model.encode(&["hello world"], &Default::default()) {
            // finite weights may still overflow (values near f32::MAX): a typed error
            Ok(_) | Err(EncoderError::NonFiniteOutput { .. }) => {}
            Err(e) => panic!("a loaded model fails to encode: {e}"),
        },
        Err(e) => assert_names(&e, &path),
    }
});
