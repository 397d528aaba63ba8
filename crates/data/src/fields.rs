//! Turning one record (a JSON object or a CSV / TSV row) into an [`Example`], a [`ScoredPair`]
//! or a [`Document`]. JSON and CSV records are read through the same [`Fields`] view so that
//! the rules (field names, empty-text policy, error messages) exist once.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::error::DataError;
use crate::reader::{EmptyTextPolicy, ReadOptions};
use crate::source::Ctx;
use crate::types::{Document, Example, ScoredPair};

/// `Ok(None)` means "skip this record" (an empty text under [`EmptyTextPolicy::Skip`]).
pub(crate) type Outcome<T> = Result<Option<T>, DataError>;

/// A field's value, as far as the mapping rules care.
pub(crate) enum Scalar<'a> {
    Absent,
    Null,
    Text(&'a str),
    Number(f64),
    Bool(bool),
    /// Any other JSON type, by name.
    Other(&'static str),
}

impl Scalar<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Scalar::Absent => "nothing",
            Scalar::Null => "null",
            Scalar::Text(_) => "a string",
            Scalar::Number(_) => "a number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Other(t) => t,
        }
    }
}

/// A record seen as named fields.
pub(crate) trait Fields {
    fn scalar(&self, key: &str) -> Scalar<'_>;
    /// The hard negatives in order, each with the field name to use in errors.
    fn negatives(&self, ctx: &Ctx<'_>) -> Result<Vec<(Cow<'_, str>, Scalar<'_>)>, DataError>;
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_scalar(v: Option<&Value>) -> Scalar<'_> {
    match v {
        None => Scalar::Absent,
        Some(Value::Null) => Scalar::Null,
        Some(Value::String(s)) => Scalar::Text(s),
        Some(Value::Number(n)) => n.as_f64().map_or(Scalar::Other("a number"), Scalar::Number),
        Some(Value::Bool(b)) => Scalar::Bool(*b),
        Some(other) => Scalar::Other(json_type(other)),
    }
}

impl Fields for Map<String, Value> {
    fn scalar(&self, key: &str) -> Scalar<'_> {
        json_scalar(self.get(key))
    }

    /// `"negative": "..."` and / or `"negatives": ["...", ...]`.
    fn negatives(&self, ctx: &Ctx<'_>) -> Result<Vec<(Cow<'_, str>, Scalar<'_>)>, DataError> {
        let mut out = Vec::new();
        match self.scalar("negative") {
            Scalar::Absent | Scalar::Null => {}
            s => out.push((Cow::Borrowed("negative"), s)),
        }
        match self.get("negatives") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => out.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Cow::Owned(format!("negatives[{i}]")), json_scalar(Some(v)))),
            ),
            Some(other) => {
                return Err(ctx.wrong_type("negatives", "a list of strings", json_type(other)))
            }
        }
        Ok(out)
    }
}

/// A CSV / TSV row with its header.
pub(crate) struct RowFields<'a> {
    pub header: &'a [String],
    pub fields: &'a [String],
}

/// Header names that hold a hard negative: `negative`, `negatives`, `negative_1`, `negative2`, ...
fn is_negative_column(name: &str) -> bool {
    name.strip_prefix("negative").is_some_and(|rest| {
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let rest = rest.strip_prefix(['_', '-', ' ']).unwrap_or(rest);
        rest.chars().all(|c| c.is_ascii_digit())
    })
}

impl Fields for RowFields<'_> {
    fn scalar(&self, key: &str) -> Scalar<'_> {
        match self.header.iter().position(|h| h == key) {
            Some(i) => self
                .fields
                .get(i)
                .map_or(Scalar::Absent, |f| Scalar::Text(f)),
            None => Scalar::Absent,
        }
    }

    fn negatives(&self, _ctx: &Ctx<'_>) -> Result<Vec<(Cow<'_, str>, Scalar<'_>)>, DataError> {
        Ok(self
            .header
            .iter()
            .zip(self.fields)
            .filter(|(h, _)| is_negative_column(h))
            .map(|(h, f)| (Cow::Borrowed(h.as_str()), Scalar::Text(f)))
            .collect())
    }
}

/// A present text value, subject to the empty-text policy.
fn text_value(
    ctx: &Ctx<'_>,
    field: &str,
    value: Scalar<'_>,
    policy: EmptyTextPolicy,
) -> Outcome<String> {
    match value {
        Scalar::Text(s) if s.trim().is_empty() => match policy {
            EmptyTextPolicy::Error => Err(ctx.empty(field)),
            EmptyTextPolicy::Skip => Ok(None),
        },
        Scalar::Text(s) => Ok(Some(s.to_string())),
        Scalar::Absent => Err(ctx.missing(format!("{field:?}"))),
        other => Err(ctx.wrong_type(field, "a string", other.type_name())),
    }
}

/// The first present key of `keys` as text; all absent is a [`DataError::MissingField`].
fn required_text(
    ctx: &Ctx<'_>,
    rec: &impl Fields,
    keys: &[&str],
    policy: EmptyTextPolicy,
) -> Outcome<String> {
    for key in keys {
        match rec.scalar(key) {
            Scalar::Absent => continue,
            value => return text_value(ctx, key, value, policy),
        }
    }
    let names: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    Err(ctx.missing(names.join(" or ")))
}

/// A label or score: a number, a boolean or a numeric string.
fn required_number(ctx: &Ctx<'_>, rec: &impl Fields, keys: &[&str]) -> Result<f32, DataError> {
    for key in keys {
        let value = match rec.scalar(key) {
            Scalar::Absent => continue,
            Scalar::Number(n) => n,
            Scalar::Bool(b) => f64::from(u8::from(b)),
            Scalar::Text(s) => match s.trim().parse::<f64>() {
                Ok(n) => n,
                Err(_) => return Err(ctx.invalid_number(*key, "a number", s)),
            },
            other => return Err(ctx.wrong_type(*key, "a number", other.type_name())),
        };
        let score = value as f32;
        if !score.is_finite() {
            return Err(ctx.invalid_number(*key, "a finite number", &value.to_string()));
        }
        return Ok(score);
    }
    let names: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    Err(ctx.missing(names.join(" or ")))
}

/// Collect texts into `out` with the empty-text policy; `Ok(None)` if one was empty and skipped.
fn texts_value<'a>(
    ctx: &Ctx<'_>,
    items: impl Iterator<Item = (Cow<'a, str>, Scalar<'a>)>,
    limit: Option<usize>,
    policy: EmptyTextPolicy,
) -> Outcome<Vec<String>> {
    let mut out = Vec::new();
    for (name, value) in items.take(limit.unwrap_or(usize::MAX)) {
        match text_value(ctx, &name, value, policy)? {
            Some(t) => out.push(t),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// A flat record: `anchor` | `query`, `positive`, optional negatives.
pub(crate) fn example(ctx: &Ctx<'_>, rec: &impl Fields, opts: &ReadOptions) -> Outcome<Example> {
    let policy = opts.empty_text;
    let Some(anchor) = required_text(ctx, rec, &["anchor", "query"], policy)? else {
        return Ok(None);
    };
    let Some(positive) = required_text(ctx, rec, &["positive"], policy)? else {
        return Ok(None);
    };
    let negs = rec.negatives(ctx)?;
    let Some(negatives) = texts_value(ctx, negs.into_iter(), opts.max_negatives, policy)? else {
        return Ok(None);
    };
    Ok(Some(Example {
        anchor,
        positive,
        negatives,
    }))
}

/// A labelled / scored pair: `sentence1`, `sentence2`, `label` | `score`.
pub(crate) fn scored_pair(
    ctx: &Ctx<'_>,
    rec: &impl Fields,
    opts: &ReadOptions,
) -> Outcome<ScoredPair> {
    let policy = opts.empty_text;
    let Some(a) = required_text(ctx, rec, &["sentence1"], policy)? else {
        return Ok(None);
    };
    let Some(b) = required_text(ctx, rec, &["sentence2"], policy)? else {
        return Ok(None);
    };
    let score = required_number(ctx, rec, &["label", "score"])?;
    Ok(Some(ScoredPair { a, b, score }))
}

/// `title + " " + text`, trimmed, as BEIR and sentence-transformers build passages.
pub(crate) fn join_title(title: Option<&str>, text: &str) -> String {
    match title {
        Some(t) => format!("{t} {text}").trim().to_string(),
        None => text.trim().to_string(),
    }
}

/// The optional `title` of a passage object.
fn optional_title<'a>(
    ctx: &Ctx<'_>,
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, DataError> {
    match obj.get("title") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ctx.wrong_type(format!("{field}title"), "a string", json_type(other))),
    }
}

/// A passage: a string, or an object with `text` and optional `title`. `field` prefixes
/// nested field names in errors (`positive_passages[0].`).
fn passage(ctx: &Ctx<'_>, field: &str, value: &Value, policy: EmptyTextPolicy) -> Outcome<String> {
    match value {
        Value::String(s) => text_value(ctx, field, Scalar::Text(s), policy),
        Value::Object(obj) => {
            let prefix = format!("{field}.");
            let title = optional_title(ctx, obj, &prefix)?;
            let text_field = format!("{prefix}text");
            let text = match obj.get("text") {
                Some(Value::String(s)) => s,
                None => return Err(ctx.missing(format!("{text_field:?}"))),
                Some(other) => {
                    return Err(ctx.wrong_type(text_field, "a string", json_type(other)))
                }
            };
            text_value(ctx, field, Scalar::Text(&join_title(title, text)), policy)
        }
        other => Err(ctx.wrong_type(
            field,
            "a string or an object with \"text\"",
            json_type(other),
        )),
    }
}

/// A list of passages (`positive_passages`, `negative_passages`); absent or null is empty.
fn passages(
    ctx: &Ctx<'_>,
    obj: &Map<String, Value>,
    key: &str,
    limit: Option<usize>,
    policy: EmptyTextPolicy,
) -> Outcome<Vec<String>> {
    let items = match obj.get(key) {
        None | Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(ctx.wrong_type(key, "a list of passages", json_type(other))),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().take(limit.unwrap_or(usize::MAX)).enumerate() {
        match passage(ctx, &format!("{key}[{i}]"), item, policy)? {
            Some(p) => out.push(p),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// A grouped record `{"query", "positive_passages", "negative_passages"}`: one example per
/// positive, each with the (first `max_negatives`) hard negatives. Returns false if skipped.
pub(crate) fn grouped(
    ctx: &Ctx<'_>,
    obj: &Map<String, Value>,
    opts: &ReadOptions,
    out: &mut Vec<Example>,
) -> Result<bool, DataError> {
    let policy = opts.empty_text;
    let Some(anchor) = required_text(ctx, obj, &["query"], policy)? else {
        return Ok(false);
    };
    let Some(positives) = passages(ctx, obj, "positive_passages", None, policy)? else {
        return Ok(false);
    };
    if positives.is_empty() {
        return match policy {
            EmptyTextPolicy::Error => Err(ctx.empty("positive_passages")),
            EmptyTextPolicy::Skip => Ok(false),
        };
    }
    let Some(negatives) = passages(ctx, obj, "negative_passages", opts.max_negatives, policy)?
    else {
        return Ok(false);
    };
    out.extend(positives.into_iter().map(|positive| Example {
        anchor: anchor.clone(),
        positive,
        negatives: negatives.clone(),
    }));
    Ok(true)
}

/// A BEIR corpus or query line: `_id` (string or integer), optional `title`, `text`.
pub(crate) fn document(
    ctx: &Ctx<'_>,
    obj: &Map<String, Value>,
    policy: EmptyTextPolicy,
) -> Outcome<Document> {
    let id = match obj.get("_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(other) => return Err(ctx.wrong_type("_id", "a string", json_type(other))),
        None => return Err(ctx.missing("\"_id\"")),
    };
    let title = optional_title(ctx, obj, "")?;
    let text = match obj.get("text") {
        Some(Value::String(s)) => s,
        None => return Err(ctx.missing("\"text\"")),
        Some(other) => return Err(ctx.wrong_type("text", "a string", json_type(other))),
    };
    let text = join_title(title, text);
    Ok(text_value(ctx, "text", Scalar::Text(&text), policy)?.map(|text| Document { id, text }))
}

#[cfg(test)]
mod tests {
    use super::is_negative_column;

    #[test]
    fn negative_column_names() {
        for yes in [
            "negative",
            "negatives",
            "negative_1",
            "negative2",
            "negative-3",
            "negative 4",
        ] {
            assert!(is_negative_column(yes), "{yes}");
        }
        for no in ["neg", "negative_x", "negativity", "positive"] {
            assert!(!is_negative_column(no), "{no}");
        }
    }
}
