//! A checkpoint's `optimizer.safetensors` (`read_optimizer_state`, then `AdamW::import`):
//! never panics; allocations stay bounded by the file; errors name the file; what is accepted
//! holds finite, paired moments.
#![no_main]

use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use embedtune_train::checkpoint::read_optimizer_state;
use embedtune_train::{AdamW, AdamWConfig};
use libfuzzer_sys::fuzz_target;

include!("scratch.rs");

type B = Autodiff<NdArray<f32>>;

fn safetensors_file(tensors: &[(&str, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({}));
    let mut data = Vec::new();
    for (name, values) in tensors {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": [values.len()], "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

fn seeds() {
    let a: Vec<f32> = (0..24).map(|i| i as f32 * 0.01).collect();
    let v: Vec<f32> = (0..24).map(|i| i as f32 * 1e-4).collect();
    write_seeds(&[
        (
            "two-parameters".into(),
            safetensors_file(&[
                ("encoder.layer.0.attention.self.query.weight.exp_avg", a.clone()),
                ("encoder.layer.0.attention.self.query.weight.exp_avg_sq", v.clone()),
                ("embeddings.LayerNorm.weight.exp_avg", a[..8].to_vec()),
                ("embeddings.LayerNorm.weight.exp_avg_sq", v[..8].to_vec()),
            ]),
        ),
        ("empty".into(), safetensors_file(&[])),
    ]);
}

fuzz_target!(
    init: {
        seeds();
    },
    |data: &[u8]| {
    let path = Path::new("/run/checkpoint/step-12/optimizer.safetensors");
    match read_optimizer_state(data, path) {
        Ok(tensors) => {
            for (name, values) in &tensors {
                assert!(values.iter().all(|v| v.is_finite()), "{name}");
            }
            let adam = AdamW::<B>::import(AdamWConfig::default(), 12, tensors, &Default::default())
                .expect("paired moments import");
            assert!(adam.tracked_parameters() * 2 <= data.len());
        }
        Err(e) => assert_names(&e, path),
    }
});
