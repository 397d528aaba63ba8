//! The sentence-transformers side of a model directory: `modules.json`, the pooling config,
//! `sentence_bert_config.json`, `config_sentence_transformers.json` and `tokenizer_config.json`,
//! as sentence-transformers 2.x to 6.x write them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{io_err, EncoderError, Result};
use crate::pooling::{Pooling, PoolingMode};

/// Query and passage prefixes prepended to texts before tokenisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompts {
    /// Prefix for queries (e.g. E5's `"query: "`).
    pub query: Option<String>,
    /// Prefix for passages / documents (e.g. E5's `"passage: "`).
    pub passage: Option<String>,
}

impl Prompts {
    /// A named preset: `e5` (`"query: "` / `"passage: "`), `bge` (`"Represent this sentence
    /// for searching relevant passages: "` / none) or `none`. `auto` is resolved by the caller
    /// (the model directory's own prompts).
    pub fn preset(name: &str) -> Option<Self> {
        let some = |s: &str| Some(s.to_string());
        match name {
            "e5" => Some(Self {
                query: some("query: "),
                passage: some("passage: "),
            }),
            "bge" => Some(Self {
                query: some("Represent this sentence for searching relevant passages: "),
                passage: None,
            }),
            "none" => Some(Self::default()),
            _ => None,
        }
    }

    /// Whether neither prompt is set.
    pub fn is_empty(&self) -> bool {
        self.query.is_none() && self.passage.is_none()
    }
}

/// What the sentence-transformers files of a model directory say.
#[derive(Debug, Clone)]
pub struct StMeta {
    /// Directory of the Transformer module (its `config.json`, weights and tokenizer).
    pub transformer_dir: PathBuf,
    /// Pooling layer.
    pub pooling: Pooling,
    /// Whether a Normalize module follows pooling.
    pub normalize: bool,
    /// Truncation length in tokens, special tokens included.
    pub max_seq_length: usize,
    /// Lowercase texts before tokenising (`do_lower_case` of `sentence_bert_config.json`).
    pub do_lower_case: bool,
    /// Prompts from `config_sentence_transformers.json`.
    pub prompts: Prompts,
    /// `similarity_fn_name` of `config_sentence_transformers.json` (`cosine` when absent).
    pub similarity_fn_name: String,
    /// Whether the directory had a `modules.json` (a sentence-transformers model).
    pub has_modules_json: bool,
    /// `tokenizer_config.json` as read (written back with `model_max_length` updated).
    pub tokenizer_config: Option<Value>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    idx: usize,
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    // Tolerate a UTF-8 byte-order mark, which some editors add.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    serde_json::from_str(text)
        .map(Some)
        .map_err(|source| EncoderError::Json {
            path: path.to_path_buf(),
            source,
        })
}

fn invalid(path: &Path, reason: impl Into<String>) -> EncoderError {
    EncoderError::InvalidConfig {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The last dotted segment of a module type (`sentence_transformers.models.Pooling` → `Pooling`).
fn module_kind(kind: &str) -> &str {
    kind.rsplit('.').next().unwrap_or(kind)
}

impl StMeta {
    /// Reads the sentence-transformers files of `dir`. `max_position_embeddings` caps the
    /// sequence length when it comes from `tokenizer_config.json`, as sentence-transformers does.
    pub fn load(
        dir: &Path,
        max_position_embeddings: impl Fn(&Path) -> Result<usize>,
    ) -> Result<Self> {
        let modules_path = dir.join("modules.json");
        let (transformer_dir, pooling_dir, normalize, has_modules_json) =
            match read_json(&modules_path)? {
                None => {
                    tracing::warn!(
                        "{} has no modules.json: treating it as a plain transformers model \
                     with mean pooling and no normalisation, as sentence-transformers does",
                        dir.display()
                    );
                    (dir.to_path_buf(), None, false, false)
                }
                Some(value) => {
                    let mut entries: Vec<ModuleEntry> =
                        serde_json::from_value(value).map_err(|source| EncoderError::Json {
                            path: modules_path.clone(),
                            source,
                        })?;
                    entries.sort_by_key(|e| e.idx);
                    let mut transformer = None;
                    let mut pooling = None;
                    let mut normalize = false;
                    for (pos, e) in entries.iter().enumerate() {
                        match (module_kind(&e.kind), pos) {
                            ("Transformer", 0) => transformer = Some(dir.join(&e.path)),
                            ("Pooling", 1) => pooling = Some(dir.join(&e.path)),
                            ("Normalize", 2) if pooling.is_some() => normalize = true,
                            (kind, _) => {
                                return Err(invalid(
                                    &modules_path,
                                    format!(
                                "module {} ({kind}) at position {pos} is not supported: expected \
                                     Transformer, then Pooling, then optionally Normalize",
                                e.kind
                            ),
                                ))
                            }
                        }
                    }
                    let transformer = transformer
                        .ok_or_else(|| invalid(&modules_path, "no Transformer module"))?;
                    let pooling =
                        pooling.ok_or_else(|| invalid(&modules_path, "no Pooling module"))?;
                    (transformer, Some(pooling), normalize, true)
                }
            };

        let pooling = match &pooling_dir {
            Some(p) => read_pooling(&p.join("config.json"))?,
            None => Pooling::default(),
        };

        // Sequence length: sentence_bert_config.json, else tokenizer_config.json capped at the
        // position embeddings, else the position embeddings.
        let st_config = [
            "sentence_bert_config.json",
            "sentence_roberta_config.json",
            "sentence_xlm-roberta_config.json",
        ]
        .iter()
        .map(|n| transformer_dir.join(n))
        .find(|p| p.is_file());
        let st_value = match &st_config {
            Some(p) => read_json(p)?.unwrap_or(Value::Null),
            None => Value::Null,
        };
        let tokenizer_config_path = transformer_dir.join("tokenizer_config.json");
        let tokenizer_config = read_json(&tokenizer_config_path)?;
        let config_path = transformer_dir.join("config.json");
        let max_positions = max_position_embeddings(&config_path)?;
        let explicit = st_value
            .get("max_seq_length")
            .and_then(Value::as_u64)
            .or_else(|| {
                ["processor_kwargs", "tokenizer_args"]
                    .iter()
                    .find_map(|k| st_value.get(k)?.get("model_max_length")?.as_u64())
            });
        let max_seq_length = match explicit {
            Some(n) => n as usize,
            None => tokenizer_config
                .as_ref()
                .and_then(|t| t.get("model_max_length")?.as_f64())
                .filter(|n| *n >= 2.0 && n.is_finite())
                .map(|n| (n as usize).min(max_positions))
                .unwrap_or(max_positions),
        };
        if max_seq_length < 2 {
            return Err(invalid(
                st_config.as_deref().unwrap_or(&config_path),
                format!("max_seq_length {max_seq_length} is too small"),
            ));
        }
        if max_seq_length > max_positions {
            return Err(invalid(
                st_config.as_deref().unwrap_or(&config_path),
                format!("max_seq_length {max_seq_length} exceeds max_position_embeddings {max_positions}"),
            ));
        }
        let do_lower_case = st_value
            .get("do_lower_case")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        let cst_path = dir.join("config_sentence_transformers.json");
        let cst = read_json(&cst_path)?.unwrap_or(Value::Null);
        let prompt = |keys: &[&str]| {
            keys.iter().find_map(|k| {
                cst.get("prompts")?
                    .get(*k)?
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(String::from)
            })
        };
        let prompts = Prompts {
            query: prompt(&["query"]),
            passage: prompt(&["passage", "document", "corpus"]),
        };
        let similarity_fn_name = cst
            .get("similarity_fn_name")
            .and_then(Value::as_str)
            .unwrap_or("cosine")
            .to_string();

        Ok(Self {
            transformer_dir,
            pooling,
            normalize,
            max_seq_length,
            do_lower_case,
            prompts,
            similarity_fn_name,
            has_modules_json,
            tokenizer_config,
        })
    }
}

/// Reads `1_Pooling/config.json` in either the 6.x (`pooling_mode`) or the legacy
/// (`pooling_mode_*_tokens` flags) form.
fn read_pooling(path: &Path) -> Result<Pooling> {
    let value = read_json(path)?.ok_or_else(|| EncoderError::MissingFile {
        path: path.to_path_buf(),
        what: "the pooling configuration",
    })?;
    let parse = |name: &str| {
        PoolingMode::from_name(name)
            .ok_or_else(|| invalid(path, format!("unknown pooling_mode {name:?}")))
    };
    let modes = match value.get("pooling_mode") {
        Some(Value::String(s)) => vec![parse(s)?],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| invalid(path, "pooling_mode entries must be strings"))
                    .and_then(parse)
            })
            .collect::<Result<Vec<_>>>()?,
        Some(_) => return Err(invalid(path, "pooling_mode must be a string or a list")),
        None => PoolingMode::ALL
            .into_iter()
            .filter(|m| {
                value
                    .get(m.legacy_key())
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .collect(),
    };
    if modes.is_empty() {
        return Err(invalid(path, "no pooling mode is enabled"));
    }
    let include_prompt = value
        .get("include_prompt")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Ok(Pooling {
        modes,
        include_prompt,
    })
}

/// The JSON files a saved model directory gets, in the layout every sentence-transformers
/// version from 2.x to 6.x reads (legacy module type names, legacy pooling flags).
pub(crate) fn st_files(meta: &StMeta, hidden: usize) -> Vec<(&'static str, Value)> {
    let mut modules = vec![
        json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
        json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
    ];
    if meta.normalize {
        modules.push(json!({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}));
    }
    let mut pooling = serde_json::Map::new();
    pooling.insert("word_embedding_dimension".into(), json!(hidden));
    for mode in PoolingMode::ALL {
        pooling.insert(
            mode.legacy_key().into(),
            json!(meta.pooling.modes.contains(&mode)),
        );
    }
    pooling.insert("include_prompt".into(), json!(meta.pooling.include_prompt));
    let mut prompts = serde_json::Map::new();
    prompts.insert(
        "query".into(),
        json!(meta.prompts.query.clone().unwrap_or_default()),
    );
    prompts.insert(
        "document".into(),
        json!(meta.prompts.passage.clone().unwrap_or_default()),
    );
    vec![
        ("modules.json", Value::Array(modules)),
        ("1_Pooling/config.json", Value::Object(pooling)),
        (
            "sentence_bert_config.json",
            json!({"max_seq_length": meta.max_seq_length, "do_lower_case": meta.do_lower_case}),
        ),
        (
            "config_sentence_transformers.json",
            json!({
                "__version__": {"embedtune": env!("CARGO_PKG_VERSION")},
                "prompts": prompts,
                "default_prompt_name": null,
                "similarity_fn_name": meta.similarity_fn_name,
            }),
        ),
    ]
}
