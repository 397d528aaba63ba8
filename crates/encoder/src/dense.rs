//! The linear layer of the transformer, with an optional LoRA adapter.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::Result;
use crate::fused;
use crate::lora::LoraAdapter;
use crate::weights::{tensor_values, NamedTensor, WeightReader};

/// A linear layer `y = x·W + b` (weight stored `[in, out]`), optionally with a LoRA adapter
/// adding `scaling · dropout(x)·A·B`.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    /// Weight `[d_in, d_out]` (the transpose of Hugging Face's `[out, in]`).
    pub weight: Param<Tensor<B, 2>>,
    /// Bias `[d_out]`.
    pub bias: Param<Tensor<B, 1>>,
    /// The LoRA adapter, when one is attached.
    pub lora: Option<LoraAdapter<B>>,
}

impl<B: Backend> Dense<B> {
    /// A layer with the given weight `[in, out]` and bias.
    pub fn new(weight: Tensor<B, 2>, bias: Tensor<B, 1>) -> Self {
        Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
            lora: None,
        }
    }

    /// Reads `{name}.weight` (`[d_out, d_in]` in the file) and `{name}.bias`.
    pub(crate) fn load(
        reader: &mut WeightReader,
        name: &str,
        d_in: usize,
        d_out: usize,
        device: &B::Device,
    ) -> Result<Self> {
        let (weight, bias) = crate::names::weight_and_bias(name);
        let weight: Tensor<B, 2> = reader.tensor(&weight, [d_out, d_in], device)?;
        let bias = reader.tensor(&bias, [d_out], device)?;
        Ok(Self::new(weight.transpose(), bias))
    }

    /// Random weights (uniform ±1/√d_in, as PyTorch's default) for tests and tiny models.
    pub fn random(d_in: usize, d_out: usize, device: &B::Device) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        let dist = burn::tensor::Distribution::Uniform(-bound, bound);
        Self::new(
            Tensor::random([d_in, d_out], dist, device),
            Tensor::random([d_out], dist, device),
        )
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Applies the layer to `[.., d_in]`.
    ///
    /// Leading dimensions are flattened first, so that the whole batch is one matrix product
    /// (backends otherwise run one small product per batch row, repacking the weight each time).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dims = x.dims();
        let rows = dims[..D - 1].iter().product();
        let x = x.reshape([rows, dims[D - 1]]);
        let mut out = fused::linear(x.clone(), self.weight.val(), self.bias.val());
        if let Some(adapter) = &self.lora {
            out = out + adapter.forward(x);
        }
        let mut out_dims = dims;
        out_dims[D - 1] = self.d_out();
        out.reshape(out_dims)
    }

    /// The weight with any adapter folded in, `[in, out]`.
    pub fn merged_weight(&self) -> Tensor<B, 2> {
        match &self.lora {
            None => self.weight.val(),
            Some(adapter) => self.weight.val() + adapter.delta(),
        }
    }

    /// Folds the adapter into the weight and removes it.
    pub fn merge(self) -> Self {
        if self.lora.is_none() {
            return self;
        }
        Self {
            weight: Param::from_tensor(self.merged_weight().detach()),
            bias: self.bias,
            lora: None,
        }
    }

    /// The (merged) tensors in Hugging Face layout, named `{name}.weight` and `{name}.bias`.
    pub(crate) fn export(&self, name: &str, out: &mut Vec<NamedTensor>) -> Result<()> {
        let (w, b) = crate::names::weight_and_bias(name);
        out.push(NamedTensor {
            shape: vec![self.d_out(), self.d_in()],
            values: tensor_values(self.merged_weight().transpose(), &w)?,
            name: w,
        });
        out.push(NamedTensor {
            shape: vec![self.d_out()],
            values: tensor_values(self.bias.val(), &b)?,
            name: b,
        });
        Ok(())
    }
}
