//! Bad inputs give a typed [`LossError`] naming the input, not a panic.

use crate::common::{randn, tensor1, tensor2};
use burn::tensor::Tensor;
use burn_ndarray::NdArray;
use embedtune_losses::{
    CachedMultipleNegativesRankingLoss, CoSentLoss, ContrastiveLoss, EmbeddingLoss, LossError,
    MatryoshkaLoss, MultipleNegativesRankingLoss, MultipleNegativesSymmetricRankingLoss,
    TripletLoss,
};

type B = NdArray<f32>;

fn emb(rows: usize, dim: usize, seed: u64) -> Tensor<B, 2> {
    tensor2(&randn(rows * dim, seed), rows, dim, &Default::default())
}

/// (name, loss, number of columns, needs labels)
type Case = (&'static str, Box<dyn EmbeddingLoss<B>>, usize, bool);

fn all_losses() -> Vec<Case> {
    // (name, loss, number of columns, needs labels)
    vec![
        (
            "mnrl",
            Box::new(MultipleNegativesRankingLoss::default()),
            3,
            false,
        ),
        (
            "symmetric",
            Box::new(MultipleNegativesSymmetricRankingLoss::default()),
            2,
            false,
        ),
        ("cosent", Box::new(CoSentLoss::default()), 2, true),
        ("contrastive", Box::new(ContrastiveLoss::default()), 2, true),
        ("triplet", Box::new(TripletLoss::default()), 3, false),
        (
            "matryoshka",
            Box::new(
                MatryoshkaLoss::new(MultipleNegativesRankingLoss::default(), &[16, 8]).unwrap(),
            ),
            2,
            false,
        ),
    ]
}

fn labels(n: usize) -> Tensor<B, 1> {
    tensor1(
        &(0..n).map(|i| (i % 2) as f64).collect::<Vec<_>>(),
        &Default::default(),
    )
}

#[test]
fn mismatched_batch_sizes_name_the_input() {
    for (name, loss, k, needs_labels) in all_losses() {
        let mut cols: Vec<_> = (0..k).map(|c| emb(6, 16, c as u64)).collect();
        cols[1] = emb(5, 16, 9);
        let l = needs_labels.then(|| labels(6));
        let err = loss.loss(&cols, l.as_ref()).unwrap_err();
        assert!(
            matches!(
                err,
                LossError::BatchMismatch {
                    rows: 5,
                    expected: 6,
                    ..
                }
            ),
            "{name}: {err}"
        );
    }
    let err = MultipleNegativesRankingLoss::default()
        .forward(emb(32, 16, 0), emb(31, 16, 1), vec![])
        .unwrap_err();
    assert_eq!(err.to_string(), "positives has 31 rows, anchors 32");
    let err = MultipleNegativesRankingLoss::default()
        .forward(
            emb(4, 16, 0),
            emb(4, 16, 1),
            vec![emb(4, 16, 2), emb(3, 16, 3)],
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "negatives[1] has 3 rows, anchors 4");
}

#[test]
fn mismatched_dimensions_are_errors() {
    let err = TripletLoss::default()
        .forward(emb(4, 16, 0), emb(4, 16, 1), emb(4, 8, 2))
        .unwrap_err();
    assert_eq!(err.to_string(), "negatives has dimension 8, anchors 16");
}

#[test]
fn wrong_number_of_labels_is_an_error() {
    let err = CoSentLoss::default()
        .forward(emb(4, 16, 0), emb(4, 16, 1), labels(3))
        .unwrap_err();
    assert_eq!(err.to_string(), "scores has 3 rows, first 4");
}

#[test]
fn empty_batches_are_errors() {
    for (name, loss, k, needs_labels) in all_losses() {
        let cols: Vec<_> = (0..k)
            .map(|_| Tensor::<B, 2>::zeros([0, 16], &Default::default()))
            .collect();
        let l = needs_labels.then(|| labels(0));
        let err = loss.loss(&cols, l.as_ref()).unwrap_err();
        assert!(matches!(err, LossError::Empty { .. }), "{name}: {err}");
    }
}

#[test]
fn non_finite_inputs_are_errors() {
    for (name, loss, k, needs_labels) in all_losses() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut cols: Vec<_> = (0..k).map(|c| emb(4, 16, c as u64)).collect();
            let mut v = randn(64, 7);
            v[13] = bad;
            cols[k - 1] = tensor2(&v, 4, 16, &Default::default());
            let l = needs_labels.then(|| labels(4));
            let err = loss.loss(&cols, l.as_ref()).unwrap_err();
            assert!(matches!(err, LossError::NonFinite { .. }), "{name}: {err}");
        }
    }
    let mut scores = vec![0.1, 0.2, 0.3, 0.4];
    scores[2] = f64::NAN;
    let err = CoSentLoss::default()
        .forward(
            emb(4, 16, 0),
            emb(4, 16, 1),
            tensor1(&scores, &Default::default()),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "scores contains non-finite values (NaN or infinity)"
    );
}

#[test]
fn missing_labels_and_wrong_column_counts_are_errors() {
    let cols = [emb(4, 16, 0), emb(4, 16, 1)];
    assert!(matches!(
        CoSentLoss::default().loss(&cols, None).unwrap_err(),
        LossError::MissingLabels { .. }
    ));
    assert!(matches!(
        TripletLoss::default().loss(&cols, None).unwrap_err(),
        LossError::ColumnCount { got: 2, .. }
    ));
    assert!(matches!(
        MultipleNegativesRankingLoss::default()
            .loss(&cols[..1], None)
            .unwrap_err(),
        LossError::ColumnCount { got: 1, .. }
    ));
}

#[test]
fn invalid_parameters_are_errors() {
    let cols = [emb(4, 16, 0), emb(4, 16, 1)];
    for scale in [0.0, -1.0, f64::NAN] {
        let err = MultipleNegativesRankingLoss::new()
            .with_scale(scale)
            .loss(&cols, None)
            .unwrap_err();
        assert!(matches!(err, LossError::InvalidParameter { .. }), "{err}");
    }
    assert!(MatryoshkaLoss::new(MultipleNegativesRankingLoss::default(), &[]).is_err());
    assert!(MatryoshkaLoss::new(MultipleNegativesRankingLoss::default(), &[8, 0]).is_err());
    assert!(
        MatryoshkaLoss::with_weights(MultipleNegativesRankingLoss::default(), &[8, 4], &[1.0])
            .is_err()
    );
    let too_big = MatryoshkaLoss::new(MultipleNegativesRankingLoss::default(), &[32, 8]).unwrap();
    let err = too_big.loss(&cols, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("column 0 has dimension 16, smaller than 32"),
        "{err}"
    );
    assert!(
        CachedMultipleNegativesRankingLoss::new(MultipleNegativesRankingLoss::default(), 0)
            .is_err()
    );
}
