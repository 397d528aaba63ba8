//! The records the readers produce.

/// A training example for contrastive / triplet losses: an anchor (query), a positive and any
/// number of hard negatives. A plain (anchor, positive) pair has no negatives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Example {
    /// The anchor (query) text.
    pub anchor: String,
    /// The text relevant to the anchor.
    pub positive: String,
    /// Hard negatives: texts not relevant to the anchor, in file order.
    pub negatives: Vec<String>,
}

impl Example {
    /// An (anchor, positive) pair without negatives.
    pub fn pair(anchor: impl Into<String>, positive: impl Into<String>) -> Self {
        Self {
            anchor: anchor.into(),
            positive: positive.into(),
            negatives: Vec::new(),
        }
    }
}

/// Two texts with a label (1 / 0) or a similarity score, for cosine / contrastive losses and
/// similarity evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPair {
    /// First text (`sentence1`).
    pub a: String,
    /// Second text (`sentence2`).
    pub b: String,
    /// `label` or `score` as read (booleans become 1.0 / 0.0).
    pub score: f32,
}

/// A text with its id: a BEIR passage (`title + " " + text`, trimmed) or query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Document {
    /// The `_id` from the file.
    pub id: String,
    /// The text.
    pub text: String,
}

/// Records whose texts the batch sampler and the statistics look at.
pub trait TextColumns {
    /// Each text with the name of its column (`anchor`, `positive`, `negative`, `sentence1`, ...).
    fn columns(&self) -> impl Iterator<Item = (&'static str, &str)>;
}

impl TextColumns for Example {
    fn columns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("anchor", self.anchor.as_str()),
            ("positive", self.positive.as_str()),
        ]
        .into_iter()
        .chain(self.negatives.iter().map(|n| ("negative", n.as_str())))
    }
}

impl TextColumns for ScoredPair {
    fn columns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("sentence1", self.a.as_str()),
            ("sentence2", self.b.as_str()),
        ]
        .into_iter()
    }
}

impl TextColumns for Document {
    fn columns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once(("text", self.text.as_str()))
    }
}

impl TextColumns for String {
    fn columns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once(("text", self.as_str()))
    }
}

impl TextColumns for &str {
    fn columns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once(("text", *self))
    }
}
