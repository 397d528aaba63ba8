//! Gradients of every loss against central finite differences on `Autodiff<NdArray<f64>>`, and
//! properties that need no reference file.

use crate::common::{randn, rel_err, tensor1, tensor2, values};
use burn::tensor::Tensor;
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use embedtune_losses::{
    CoSentLoss, ContrastiveLoss, Distance, EmbeddingLoss, MatryoshkaLoss,
    MultipleNegativesRankingLoss, MultipleNegativesSymmetricRankingLoss, Similarity, TripletLoss,
};

type B = Autodiff<NdArray<f64>>;
type Inner = NdArray<f64>;

const N: usize = 5;
const D: usize = 8;

/// Columns of random embeddings; `close` makes column 1 a small perturbation of column 0 for the
/// given rows (so that margin-based terms are active).
fn columns(k: usize, seed: u64, close: &[usize]) -> Vec<Vec<f64>> {
    let mut cols: Vec<Vec<f64>> = (0..k).map(|c| randn(N * D, seed + c as u64)).collect();
    let noise = randn(N * D, seed + 100);
    for &r in close {
        for j in 0..D {
            cols[1][r * D + j] = cols[0][r * D + j] + 0.2 * noise[r * D + j];
        }
    }
    cols
}

fn value_of(loss: &dyn EmbeddingLoss<Inner>, cols: &[Vec<f64>], labels: Option<&[f64]>) -> f64 {
    let device = Default::default();
    let ts: Vec<Tensor<Inner, 2>> = cols.iter().map(|c| tensor2(c, N, D, &device)).collect();
    let l = labels.map(|l| tensor1::<Inner>(l, &device));
    values(loss.loss(&ts, l.as_ref()).unwrap())[0]
}

/// Autodiff gradient vs central differences (h = 1e-6) for every entry of every column.
fn gradcheck<L>(loss: L, cols: Vec<Vec<f64>>, labels: Option<Vec<f64>>) -> f64
where
    L: EmbeddingLoss<B> + EmbeddingLoss<Inner>,
{
    let device = Default::default();
    let leaves: Vec<Tensor<B, 2>> = cols
        .iter()
        .map(|c| tensor2::<B>(c, N, D, &device).require_grad())
        .collect();
    let l = labels.as_ref().map(|l| tensor1::<B>(l, &device));
    let out = EmbeddingLoss::<B>::loss(&loss, &leaves, l.as_ref()).unwrap();
    let grads = out.backward();

    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for (c, leaf) in leaves.iter().enumerate() {
        let analytic = values(leaf.grad(&grads).unwrap());
        let mut numeric = vec![0.0; N * D];
        for (i, g) in numeric.iter_mut().enumerate() {
            let mut plus = cols.clone();
            plus[c][i] += h;
            let mut minus = cols.clone();
            minus[c][i] -= h;
            *g = (value_of(&loss, &plus, labels.as_deref())
                - value_of(&loss, &minus, labels.as_deref()))
                / (2.0 * h);
        }
        worst = worst.max(rel_err(&analytic, &numeric));
    }
    eprintln!("worst rel err vs finite differences: {worst:.3e}");
    worst
}

const TOL: f64 = 1e-6;

#[test]
fn gradcheck_mnrl_cosine_with_hard_negatives() {
    let err = gradcheck(
        MultipleNegativesRankingLoss::default(),
        columns(4, 1, &[]),
        None,
    );
    assert!(err < TOL, "{err:e}");
}

#[test]
fn gradcheck_mnrl_dot_product() {
    let loss = MultipleNegativesRankingLoss::new()
        .with_scale(1.0)
        .with_similarity(Similarity::DotProduct);
    let err = gradcheck(loss, columns(2, 2, &[]), None);
    assert!(err < TOL, "{err:e}");
}

#[test]
fn gradcheck_symmetric_with_hard_negative() {
    let err = gradcheck(
        MultipleNegativesSymmetricRankingLoss::default(),
        columns(3, 3, &[]),
        None,
    );
    assert!(err < TOL, "{err:e}");
}

#[test]
fn gradcheck_cosent() {
    let scores = vec![0.9, 0.1, 0.5, 0.5, 0.0];
    let err = gradcheck(CoSentLoss::default(), columns(2, 4, &[]), Some(scores));
    assert!(err < TOL, "{err:e}");
}

#[test]
fn gradcheck_contrastive_cosine_both_terms_active() {
    // Rows 1 and 3 are dissimilar (label 0) but close: the margin term is active there.
    let labels = vec![1.0, 0.0, 1.0, 0.0, 0.0];
    let err = gradcheck(
        ContrastiveLoss::default(),
        columns(2, 5, &[1, 3]),
        Some(labels),
    );
    assert!(err < TOL, "{err:e}");
}

#[test]
fn gradcheck_contrastive_euclidean_sum() {
    let loss = ContrastiveLoss::new()
        .with_distance(Distance::Euclidean)
        .with_margin(3.0)
        .with_size_average(false);
    let labels = vec![1.0, 0.0, 1.0, 0.0, 1.0];
    let err = gradcheck(loss, columns(2, 6, &[1, 3]), Some(labels));
    assert!(err < TOL, "{err:e}");
}

#[test]
fn gradcheck_triplet_euclidean_and_cosine() {
    let err = gradcheck(TripletLoss::default(), columns(3, 7, &[]), None);
    assert!(err < TOL, "euclidean {err:e}");
    let cos = TripletLoss::new()
        .with_distance(Distance::Cosine)
        .with_margin(0.5);
    let err = gradcheck(cos, columns(3, 8, &[0, 2]), None);
    assert!(err < TOL, "cosine {err:e}");
}

#[test]
fn gradcheck_matryoshka_mnrl() {
    let loss = MatryoshkaLoss::with_weights(
        MultipleNegativesRankingLoss::default(),
        &[4, 8, 2],
        &[1.0, 0.5, 2.0],
    )
    .unwrap();
    let err = gradcheck(loss, columns(3, 9, &[]), None);
    assert!(err < TOL, "{err:e}");
}

// ---- values checked by independent computation ------------------------------------------

/// MNRL computed with plain f64 loops: cross-entropy over cosine similarities.
fn mnrl_by_hand(cols: &[Vec<f64>], scale: f64, dims: usize, stride: usize) -> f64 {
    let row = |c: usize, i: usize| -> Vec<f64> {
        let r = &cols[c][i * stride..i * stride + dims];
        let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
        r.iter().map(|x| x / norm).collect()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut total = 0.0;
    for i in 0..N {
        let a = row(0, i);
        let logits: Vec<f64> = (1..cols.len())
            .flat_map(|c| (0..N).map(move |j| (c, j)))
            .map(|(c, j)| scale * dot(&a, &row(c, j)))
            .collect();
        let lse = logits.iter().map(|x| x.exp()).sum::<f64>().ln();
        total += lse - logits[i];
    }
    total / N as f64
}

#[test]
fn mnrl_matches_hand_computation() {
    let cols = columns(3, 11, &[]);
    let got = value_of(&MultipleNegativesRankingLoss::default(), &cols, None);
    let want = mnrl_by_hand(&cols, 20.0, D, D);
    assert!((got - want).abs() < 1e-12 * want.abs(), "{got} vs {want}");
}

#[test]
fn matryoshka_is_weighted_sum_over_renormalised_prefixes() {
    let cols = columns(2, 12, &[]);
    // Dot-product MNRL on renormalised prefixes is cosine MNRL on the prefixes.
    let inner = MultipleNegativesRankingLoss::new().with_similarity(Similarity::DotProduct);
    let loss = MatryoshkaLoss::with_weights(inner, &[3, 8], &[0.25, 1.0]).unwrap();
    assert_eq!(loss.dims(), &[8, 3]);
    assert_eq!(loss.weights(), &[1.0, 0.25]);
    let got = value_of(&loss, &cols, None);
    let want = mnrl_by_hand(&cols, 20.0, 8, D) + 0.25 * mnrl_by_hand(&cols, 20.0, 3, D);
    assert!((got - want).abs() < 1e-12 * want.abs(), "{got} vs {want}");
}

#[test]
fn symmetric_is_mean_of_both_directions() {
    let cols = columns(2, 13, &[]);
    let sym = value_of(
        &MultipleNegativesSymmetricRankingLoss::default(),
        &cols,
        None,
    );
    let forward = value_of(&MultipleNegativesRankingLoss::default(), &cols, None);
    let backward = value_of(
        &MultipleNegativesRankingLoss::default(),
        &[cols[1].clone(), cols[0].clone()],
        None,
    );
    let want = 0.5 * (forward + backward);
    assert!((sym - want).abs() < 1e-12 * want.abs(), "{sym} vs {want}");
}

#[test]
fn cosent_counts_only_wrongly_ordered_pairs() {
    let cols = columns(2, 14, &[]);
    let cos = |i: usize| {
        let (a, b) = (&cols[0][i * D..(i + 1) * D], &cols[1][i * D..(i + 1) * D]);
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (na * nb)
    };
    let sims: Vec<f64> = (0..N).map(cos).collect();
    let scores = [0.3, 0.3, 0.9, 0.1, 0.5];
    let mut sum = 1.0;
    for i in 0..N {
        for j in 0..N {
            if scores[i] < scores[j] {
                sum += (20.0 * (sims[i] - sims[j])).exp();
            }
        }
    }
    let got = value_of(&CoSentLoss::default(), &cols, Some(&scores));
    assert!(
        (got - sum.ln()).abs() < 1e-12 * sum.ln(),
        "{got} vs {}",
        sum.ln()
    );
}

#[test]
fn triplet_is_zero_when_margin_is_met() {
    let mut cols = columns(3, 15, &[]);
    cols[1] = cols[0].clone(); // positives equal the anchors: d_pos = 0
    for x in cols[2].iter_mut() {
        *x *= 100.0; // negatives far away
    }
    let device = Default::default();
    let leaves: Vec<Tensor<B, 2>> = cols
        .iter()
        .map(|c| tensor2::<B>(c, N, D, &device).require_grad())
        .collect();
    let loss = TripletLoss::default().loss(&leaves, None).unwrap();
    let grads = loss.backward();
    assert_eq!(values(loss), vec![0.0]);
    // Identical anchor/positive rows give a zero (not NaN) gradient.
    for leaf in &leaves {
        assert!(values(leaf.grad(&grads).unwrap()).iter().all(|g| *g == 0.0));
    }
}

#[test]
fn triplet_identical_anchor_and_positive_give_finite_gradient() {
    let mut cols = columns(3, 16, &[]);
    cols[1] = cols[0].clone(); // d_pos = 0 while the hinge is active (d_neg < margin)
    let anchors = cols[0].clone();
    for (n, a) in cols[2].iter_mut().zip(&anchors) {
        *n = a + 0.1 * *n;
    }
    let device = Default::default();
    let leaves: Vec<Tensor<B, 2>> = cols
        .iter()
        .map(|c| tensor2::<B>(c, N, D, &device).require_grad())
        .collect();
    let loss = TripletLoss::default().loss(&leaves, None).unwrap();
    let grads = loss.backward();
    assert!(values(loss)[0] > 0.0);
    for leaf in &leaves {
        assert!(values(leaf.grad(&grads).unwrap())
            .iter()
            .all(|g| g.is_finite()));
    }
}
