//! The losses instantiated for burn's CPU backend (f32 and f64, with and without autodiff), for
//! faster debug builds of the crates that use them (feature `cpu-instances`, debug builds only;
//! see `embedtune-encoder`'s module of the same name). Nothing here runs; [`cpu`] exists to be
//! compiled.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;

use crate::{
    normalize, CoSentLoss, ContrastiveLoss, EmbeddingLoss, GistEmbedLoss, LossError,
    MatryoshkaLoss, MultipleNegativesRankingLoss, MultipleNegativesSymmetricRankingLoss,
    TripletLoss,
};

fn forward<B: Backend>(device: &B::Device) -> Result<Vec<Tensor<B, 1>>, LossError> {
    let column = || Tensor::<B, 2>::from_data(TensorData::new(vec![0.0f32; 4], [2, 2]), device);
    let columns = vec![column(), column(), column()];
    let labels = Tensor::<B, 1>::from_data(TensorData::new(vec![0.0f32; 2], [2]), device);
    let labels = Some(&labels);
    let _ = normalize(column()).into_data();
    Ok(vec![
        MultipleNegativesRankingLoss::default().loss(&columns, labels)?,
        MultipleNegativesSymmetricRankingLoss::default().loss(&columns, labels)?,
        CoSentLoss::default().loss(&columns[..2], labels)?,
        ContrastiveLoss::default().loss(&columns[..2], labels)?,
        TripletLoss::default().loss(&columns, labels)?,
        GistEmbedLoss::default()
            .with_guide(columns.clone())
            .loss(&columns, labels)?,
        MatryoshkaLoss::new(MultipleNegativesRankingLoss::default(), &[2, 1])?
            .loss(&columns, labels)?,
    ])
}

fn backward<B: AutodiffBackend>(device: &B::Device) -> Result<(), LossError> {
    for loss in forward::<B>(device)? {
        let _ = loss.into_scalar();
    }
    for loss in forward::<B>(device)? {
        let _ = loss.backward();
    }
    Ok(())
}

/// Compiles the instances (never called).
#[doc(hidden)]
pub fn cpu() -> Result<(), LossError> {
    let device = Default::default();
    forward::<NdArray<f32>>(&device)?;
    forward::<NdArray<f64>>(&device)?;
    backward::<Autodiff<NdArray<f32>>>(&device)?;
    backward::<Autodiff<NdArray<f64>>>(&device)
}
