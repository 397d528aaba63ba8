//! The encoder's generic code instantiated for burn's CPU backend, for faster debug builds of
//! the crates that use it (feature `cpu-instances`, debug builds only).
//!
//! Below opt-level 2 rustc shares generic instances between crates: a dependent that calls
//! `SentenceEncoder::<NdArray<f32>>::encode` links the copy compiled here instead of compiling
//! its own. Without these modules (one per library crate) every test binary and example of the
//! workspace compiled burn's tensor code for `NdArray<f32>` and `Autodiff<NdArray<f32>>` again:
//! 98–158 CPU-s each on 2 cores, 2.5–53 s with them (`cargo test --no-run --timings`). Nothing
//! here runs; [`cpu`] exists to be compiled.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;

use crate::{EncodeOptions, LoraConfig, Result, SentenceEncoder, TextTokenizer, TransformerConfig};

fn inference<B: Backend>(
    dir: &Path,
    out: &Path,
    config: TransformerConfig,
    tokenizer: TextTokenizer,
    device: &B::Device,
) -> Result<()> {
    let model = SentenceEncoder::<B>::load(dir, device)?;
    let random = SentenceEncoder::<B>::random(config, tokenizer, device)?;
    let options = EncodeOptions::default();
    let owned = vec![String::new()];
    model.encode(&[""], &options)?;
    model.encode(&owned, &options)?;
    model.encode_queries(&[""], 1)?;
    model.encode_queries(&owned, 1)?;
    model.encode_passages(&[""], 1)?;
    model.encode_passages(&owned, 1)?;
    let batch = model.tokenize(&[""], None)?;
    let _ = model.forward(&batch).into_data();
    let _ = model.embed(&[""], None)?.into_data();
    model.save(out)?;
    model.save_into(out)?;
    let lora = random.with_lora(LoraConfig::default(), 0)?;
    lora.save_lora_adapter(out)?;
    let _ = lora.clone().merge_lora();
    let _ = lora.remove_lora();
    let _ = model.load_lora_adapter(out)?.parameter_counts();
    Ok(())
}

fn training<B: AutodiffBackend>(dir: &Path, device: &B::Device) -> Result<()> {
    let model = SentenceEncoder::<B>::load(dir, device)?.with_lora(LoraConfig::default(), 0)?;
    let batch = model.tokenize(&[""], None)?;
    let _ = model.forward(&batch).sum().backward();
    let _ = model.valid().merge_lora();
    Ok(())
}

/// Compiles the instances (never called).
#[doc(hidden)]
pub fn cpu(
    dir: &Path,
    out: &Path,
    config: TransformerConfig,
    tokenizer: TextTokenizer,
) -> Result<()> {
    let device = Default::default();
    inference::<NdArray<f32>>(dir, out, config.clone(), tokenizer.clone(), &device)?;
    inference::<Autodiff<NdArray<f32>>>(dir, out, config, tokenizer, &device)?;
    training::<Autodiff<NdArray<f32>>>(dir, &device)
}
