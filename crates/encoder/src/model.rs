//! [`SentenceEncoder`]: a sentence-transformers model (Transformer → Pooling → Normalize) in burn.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use serde_json::Value;

use crate::bert::{Bert, Source};
use crate::config::TransformerConfig;
use crate::error::{io_err, EncoderError, LoraError, Result};
use crate::fused::Inference;
use crate::lora::{LoraAdapter, LoraConfig, PeftAdapterConfig, TargetModules};
use crate::names::{self, LoraFactor, PEFT_PREFIX};
use crate::pooling::{l2_normalize, Pooling};
use crate::st::{st_files, Prompts, StMeta};
use crate::tokenize::{TextTokenizer, TokenBatch};
use crate::weights::{tensor_values, RawTensor, WeightReader};
use embedtune_core::{write_dir_atomically, DirWriter, Embeddings};

/// Tokenizer files copied verbatim from the source directory when a model is saved.
const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "special_tokens_map.json",
    "vocab.txt",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
];

/// Everything about a model that is not a trainable tensor.
#[derive(Debug, Clone)]
struct Meta {
    config: TransformerConfig,
    st: StMeta,
    tokenizer: TextTokenizer,
    /// Name prefix of the source weights (`""` or `"bert."`).
    weight_prefix: &'static str,
    /// Unused tensors of the source checkpoint, written back unchanged.
    kept_tensors: Vec<RawTensor>,
    /// Tokenizer files of the source directory (name, bytes).
    tokenizer_files: Vec<(String, Vec<u8>)>,
    /// The LoRA configuration of attached adapters.
    lora: Option<LoraConfig>,
    /// Where the model was loaded from.
    source: Option<PathBuf>,
}

/// Marks every float parameter as trainable again (after LoRA froze them).
struct RequireGrad;

impl<B: Backend> ModuleMapper<B> for RequireGrad {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.set_require_grad(true), mapper)
    }
}

/// Fails when the tokenizer can produce an id past the model's word embeddings (a tokenizer from
/// another model, or `added_tokens` beyond `vocab_size`): once, at load, instead of an index
/// error inside the backend at the first text that holds such a token.
fn check_vocab(tokenizer: &TextTokenizer, config: &TransformerConfig, path: &Path) -> Result<()> {
    match tokenizer.max_token_id() {
        Some(max_id) if max_id as usize >= config.vocab_size => Err(EncoderError::VocabMismatch {
            tokenizer: tokenizer.path().to_path_buf(),
            config: path.to_path_buf(),
            max_id,
            vocab_size: config.vocab_size,
        }),
        _ => Ok(()),
    }
}

/// Options of [`SentenceEncoder::encode`].
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Prefix prepended to every text (e.g. `"query: "`).
    pub prompt: Option<String>,
    /// Override the model's normalisation: `Some(false)` returns the pooled vectors.
    pub normalize: Option<bool>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            prompt: None,
            normalize: None,
        }
    }
}

/// A sentence-embedding model: BERT encoder, pooling, optional L2 normalisation, tokenizer and
/// prompts, loaded from and saved to a sentence-transformers model directory.
///
/// It is a burn [`Module`]: on an autodiff backend, [`SentenceEncoder::forward`] carries
/// gradients and an optimiser can update it; `valid()` gives the inference copy (no dropout).
#[derive(Module, Debug)]
pub struct SentenceEncoder<B: Backend> {
    /// The transformer.
    pub bert: Bert<B>,
    #[module(skip)]
    meta: Arc<Meta>,
}

impl<B: Backend> SentenceEncoder<B> {
    /// Loads a model directory (sentence-transformers layout, or a plain transformers BERT
    /// directory, which gets mean pooling without normalisation).
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        // A save into `dir` killed half-way is completed or rolled back first.
        embedtune_core::recover_interrupted(dir)?;
        if !dir.is_dir() {
            return Err(EncoderError::MissingFile {
                path: dir.to_path_buf(),
                what: "the model directory",
            });
        }
        let st = StMeta::load(dir, |p| Ok(TransformerConfig::load(p)?.max_tokens()))?;
        let tdir = st.transformer_dir.clone();
        let config = TransformerConfig::load(&tdir.join("config.json"))?;
        let weights_path = tdir.join("model.safetensors");
        if !weights_path.is_file() {
            let found: Vec<String> = [
                "pytorch_model.bin",
                "model.bin",
                "tf_model.h5",
                "model.onnx",
                "flax_model.msgpack",
            ]
            .iter()
            .filter(|f| tdir.join(f).exists())
            .map(|f| f.to_string())
            .collect();
            if found.is_empty() {
                return Err(EncoderError::MissingFile {
                    path: weights_path,
                    what: "the weights (model.safetensors)",
                });
            }
            return Err(EncoderError::NotSafetensors {
                dir: tdir,
                found: found.join(", "),
            });
        }
        let mut reader = WeightReader::open(&weights_path)?;
        let weight_prefix = reader.prefix();
        let bert = Bert::new(&config, &mut Source::File(&mut reader), device)?;
        let kept_tensors = reader.finish()?;

        let tokenizer = TextTokenizer::from_file(
            &tdir.join("tokenizer.json"),
            st.max_seq_length,
            config.pad_token_id,
        )?
        .with_lowercase(st.do_lower_case);
        check_vocab(&tokenizer, &config, &tdir.join("config.json"))?;
        let mut tokenizer_files = Vec::new();
        for name in TOKENIZER_FILES {
            let p = tdir.join(name);
            if p.is_file() {
                tokenizer_files.push((name.to_string(), std::fs::read(&p).map_err(io_err(&p))?));
            }
        }
        Ok(Self {
            bert,
            meta: Arc::new(Meta {
                config,
                st,
                tokenizer,
                weight_prefix,
                kept_tensors,
                tokenizer_files,
                lora: None,
                source: Some(dir.to_path_buf()),
            }),
        })
    }

    /// A model with random weights (for tests and examples that need no files): the given
    /// config and tokenizer, mean pooling and L2 normalisation.
    pub fn random(
        config: TransformerConfig,
        tokenizer: TextTokenizer,
        device: &B::Device,
    ) -> Result<Self> {
        check_vocab(&tokenizer, &config, Path::new("<config>"))?;
        let bert = Bert::new(&config, &mut Source::Random, device)?;
        let st = StMeta {
            transformer_dir: PathBuf::new(),
            pooling: Pooling::default(),
            normalize: true,
            max_seq_length: tokenizer.max_seq_len(),
            do_lower_case: false,
            prompts: Prompts::default(),
            similarity_fn_name: "cosine".into(),
            has_modules_json: true,
            tokenizer_config: None,
        };
        let tokenizer_json =
            tokenizer
                .inner()
                .to_string(true)
                .map_err(|e| EncoderError::Tokenizer {
                    path: PathBuf::from("<in memory>"),
                    reason: e.to_string(),
                })?;
        Ok(Self {
            bert,
            meta: Arc::new(Meta {
                config,
                st,
                tokenizer,
                weight_prefix: "",
                kept_tensors: Vec::new(),
                tokenizer_files: vec![("tokenizer.json".into(), tokenizer_json.into_bytes())],
                lora: None,
                source: None,
            }),
        })
    }

    fn meta_mut(&mut self) -> &mut Meta {
        Arc::make_mut(&mut self.meta)
    }

    /// The transformer configuration.
    pub fn config(&self) -> &TransformerConfig {
        &self.meta.config
    }

    /// The tokenizer, with the model's `max_seq_length` and lowercasing (its
    /// [`TextTokenizer::token_lengths`] gives the lengths that dataset statistics count).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.meta.tokenizer
    }

    /// The pooling layer.
    pub fn pooling(&self) -> &Pooling {
        &self.meta.st.pooling
    }

    /// Whether embeddings are L2-normalised.
    pub fn normalize(&self) -> bool {
        self.meta.st.normalize
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.meta.config.hidden_size * self.meta.st.pooling.modes.len()
    }

    /// Truncation length in tokens, special tokens included.
    pub fn max_seq_length(&self) -> usize {
        self.meta.st.max_seq_length
    }

    /// Changes the truncation length (at most [`TransformerConfig::max_tokens`]).
    pub fn set_max_seq_length(&mut self, max_seq_length: usize) -> Result<()> {
        let limit = self.meta.config.max_tokens();
        if max_seq_length > limit || max_seq_length < 2 {
            return Err(EncoderError::InvalidInput {
                name: "max_seq_length",
                reason: format!("{max_seq_length} is not in 2..={limit}"),
            });
        }
        let meta = self.meta_mut();
        meta.tokenizer.set_max_seq_len(max_seq_length)?;
        meta.st.max_seq_length = max_seq_length;
        Ok(())
    }

    /// Query and passage prompts (from `config_sentence_transformers.json`, or as set).
    pub fn prompts(&self) -> &Prompts {
        &self.meta.st.prompts
    }

    /// Replaces the prompts (they are saved with the model).
    pub fn set_prompts(&mut self, prompts: Prompts) {
        self.meta_mut().st.prompts = prompts;
    }

    /// The directory the model was loaded from.
    pub fn source(&self) -> Option<&Path> {
        self.meta.source.as_deref()
    }

    /// Tokenises `texts` (each prefixed by `prompt`) into a padded batch.
    pub fn tokenize(&self, texts: &[&str], prompt: Option<&str>) -> Result<TokenBatch> {
        if texts.is_empty() {
            return Err(EncoderError::InvalidInput {
                name: "texts",
                reason: "no texts to encode".into(),
            });
        }
        self.meta.tokenizer.batch(texts, prompt)
    }

    /// The device of the model's weights.
    pub fn device(&self) -> B::Device {
        self.bert.embeddings.word.weight.device()
    }

    /// Embeddings `[batch, dim]` of a token batch: transformer, pooling and (per the model)
    /// normalisation. Differentiable on autodiff backends.
    pub fn forward(&self, batch: &TokenBatch) -> Tensor<B, 2> {
        let (ids, mask, types) = batch.to_tensors::<B>(&self.device());
        self.forward_tensors(ids, mask, types, batch.prompt_len, self.meta.st.normalize)
    }

    /// [`SentenceEncoder::forward`] on tensors; `normalize` overrides the model's setting.
    pub fn forward_tensors(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        prompt_len: usize,
        normalize: bool,
    ) -> Tensor<B, 2> {
        let tokens = self
            .bert
            .forward(input_ids, attention_mask.clone(), token_type_ids);
        let pooled = self
            .meta
            .st
            .pooling
            .forward(tokens, attention_mask, prompt_len);
        if normalize {
            l2_normalize(pooled)
        } else {
            pooled
        }
    }

    /// Tokenises and embeds `texts` in one batch: `[texts, dim]`, differentiable.
    pub fn embed(&self, texts: &[&str], prompt: Option<&str>) -> Result<Tensor<B, 2>> {
        Ok(self.forward(&self.tokenize(texts, prompt)?))
    }

    /// Batched inference: one embedding per text, as the rows of a matrix in input order.
    /// Texts are grouped by token length so that batches carry little padding.
    pub fn encode<S: AsRef<str>>(
        &self,
        texts: &[S],
        options: &EncodeOptions,
    ) -> Result<Embeddings> {
        self.encode_with_progress(texts, options, |_| {})
    }

    /// [`SentenceEncoder::encode`], calling `progress(texts_done)` after each batch.
    pub fn encode_with_progress<S: AsRef<str>>(
        &self,
        texts: &[S],
        options: &EncodeOptions,
        progress: impl FnMut(usize),
    ) -> Result<Embeddings> {
        if options.batch_size == 0 {
            return Err(EncoderError::InvalidInput {
                name: "batch_size",
                reason: "must be positive".into(),
            });
        }
        let dim = self.dim();
        if texts.is_empty() {
            return Ok(Embeddings::with_capacity(dim, 0)?);
        }
        let prompt = options.prompt.as_deref().filter(|p| !p.is_empty());
        let tok = &self.meta.tokenizer;
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| match prompt {
                Some(p) => format!("{p}{}", t.as_ref()),
                None => t.as_ref().to_string(),
            })
            .collect();
        let ids = tok.encode_ids(&inputs.iter().map(String::as_str).collect::<Vec<_>>())?;
        let prompt_len = match prompt {
            Some(p) => tok.prompt_len(p)?,
            None => 0,
        };
        self.embed_token_ids(&ids, prompt_len, options, progress)
    }

    /// Batched inference on texts already tokenised by [`SentenceEncoder::tokenizer`]
    /// ([`TextTokenizer::encode_ids`], prompt included, truncated): one embedding per row of
    /// `ids`, in order. `prompt_len` is [`TextTokenizer::prompt_len`] of the prompt (0 for
    /// none); `options.prompt` is not used (the prompt is in the ids). For callers that
    /// tokenise elsewhere, e.g. a server that counts tokens before queueing a request.
    pub fn embed_token_ids(
        &self,
        ids: &[Vec<u32>],
        prompt_len: usize,
        options: &EncodeOptions,
        mut progress: impl FnMut(usize),
    ) -> Result<Embeddings> {
        if options.batch_size == 0 {
            return Err(EncoderError::InvalidInput {
                name: "batch_size",
                reason: "must be positive".into(),
            });
        }
        let dim = self.dim();
        if ids.is_empty() {
            return Ok(Embeddings::with_capacity(dim, 0)?);
        }
        let tok = &self.meta.tokenizer;
        if let Some((row, len)) = ids
            .iter()
            .map(Vec::len)
            .enumerate()
            .find(|&(_, len)| len == 0 || len > tok.max_seq_len())
        {
            return Err(EncoderError::InvalidInput {
                name: "ids",
                reason: format!(
                    "row {row} has {len} tokens (1 to max_seq_len {} allowed)",
                    tok.max_seq_len()
                ),
            });
        }
        let vocab = self.meta.config.vocab_size;
        if let Some((row, &id)) = ids.iter().enumerate().find_map(|(row, r)| {
            r.iter()
                .find(|&&id| id as usize >= vocab)
                .map(|id| (row, id))
        }) {
            return Err(EncoderError::InvalidInput {
                name: "ids",
                reason: format!("row {row} has token id {id}, past the vocabulary ({vocab})"),
            });
        }
        // Longest first, so the first batch shows the peak memory at once.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let normalize = options.normalize.unwrap_or(self.meta.st.normalize);
        let device = self.device();
        // The CPU backend's inference forward, when the model runs on it.
        let mut fast = Inference::new(&self.bert);
        let mut out = Embeddings::zeros(ids.len(), dim)?;
        let mut done = 0;
        for chunk in order.chunks(options.batch_size) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let values = match fast.as_mut() {
                Some(fast) => fast.embed(&rows, &self.meta.st.pooling, prompt_len, normalize)?,
                None => {
                    let owned: Vec<Vec<u32>> = rows.iter().map(|r| r.to_vec()).collect();
                    let batch = tok.pad(&owned, prompt_len);
                    let (a, b, c) = batch.to_tensors::<B>(&device);
                    let emb = self.forward_tensors(a, b, c, prompt_len, normalize);
                    tensor_values(emb, "embeddings")?
                }
            };
            if values.iter().any(|v| !v.is_finite()) {
                return Err(EncoderError::NonFiniteOutput { what: "embeddings" });
            }
            for (row, &i) in values.chunks_exact(dim).zip(chunk) {
                if let Some(slot) = out.get_mut(i) {
                    slot.copy_from_slice(row);
                }
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }

    /// Encodes queries with the query prompt.
    pub fn encode_queries<S: AsRef<str>>(
        &self,
        texts: &[S],
        batch_size: usize,
    ) -> Result<Embeddings> {
        let options = EncodeOptions {
            batch_size,
            prompt: self.meta.st.prompts.query.clone(),
            normalize: None,
        };
        self.encode(texts, &options)
    }

    /// Encodes passages with the passage prompt.
    pub fn encode_passages<S: AsRef<str>>(
        &self,
        texts: &[S],
        batch_size: usize,
    ) -> Result<Embeddings> {
        let options = EncodeOptions {
            batch_size,
            prompt: self.meta.st.prompts.passage.clone(),
            normalize: None,
        };
        self.encode(texts, &options)
    }

    /// Saves the model as a sentence-transformers directory (LoRA adapters merged), replacing
    /// `dir` atomically: everything is written to a sibling temporary directory which is then
    /// renamed into place, so a crash never leaves a half-written model.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let weights = self.weights_bytes(dir)?;
        write_dir_atomically(dir, |w| self.write_files(w, &weights))
    }

    /// Saves the model's files into `dir`, keeping other files there (e.g. a training run's
    /// logs): each file is staged, then renamed into place atomically. See
    /// [`write_into_dir`](embedtune_core::write_into_dir).
    pub fn save_into(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let weights = self.weights_bytes(dir)?;
        embedtune_core::write_into_dir(dir, |w| self.write_files(w, &weights))
    }

    fn weights_bytes(&self, dir: &Path) -> Result<Vec<u8>> {
        crate::weights::serialize(
            self.meta.weight_prefix,
            &self.bert.export()?,
            &self.meta.kept_tensors,
            &dir.join("model.safetensors"),
        )
    }

    fn write_files(&self, w: &mut DirWriter, weights: &[u8]) -> Result<()> {
        let meta = &self.meta;
        w.json("config.json", &meta.config.raw)?;
        w.bytes("model.safetensors", weights)?;
        for (name, bytes) in &meta.tokenizer_files {
            w.bytes(name, bytes)?;
        }
        let mut tok_cfg = meta.st.tokenizer_config.clone().unwrap_or_else(
            || serde_json::json!({"tokenizer_class": "BertTokenizer", "do_lower_case": true}),
        );
        if let Value::Object(m) = &mut tok_cfg {
            m.insert("model_max_length".into(), meta.st.max_seq_length.into());
        }
        w.json("tokenizer_config.json", &tok_cfg)?;
        for (name, value) in st_files(&meta.st, meta.config.hidden_size) {
            w.json(name, &value)?;
        }
        Ok(())
    }

    /// Attaches LoRA adapters to every linear layer that `config` targets and freezes all
    /// other parameters. `seed` makes the adapters' initialisation reproducible.
    pub fn with_lora(self, config: LoraConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        if self.meta.lora.is_some() {
            return Err(LoraError::AlreadyAttached.into());
        }
        let device = self.device();
        let mut meta = (*self.meta).clone();
        let frozen = self.bert.no_grad();
        let mut counter = 0u64;
        let bert = frozen.map_dense(&mut |name, dense| {
            if !config.matches(name) {
                return Ok(dense);
            }
            // Checked before anything is allocated: an absurd rank (e.g. from a corrupted
            // adapter_config.json) must not reach the allocator.
            let smaller = dense.d_in().min(dense.d_out());
            if config.r > smaller {
                return Err(EncoderError::from(LoraError::RankTooLarge {
                    r: config.r,
                    module: name.to_string(),
                    smaller,
                }));
            }
            counter += 1;
            let adapter = LoraAdapter::init(
                dense.d_in(),
                dense.d_out(),
                &config,
                seed.wrapping_add(counter),
                &device,
            );
            Ok(crate::dense::Dense {
                lora: Some(adapter),
                ..dense
            })
        })?;
        if counter == 0 {
            return Err(LoraError::NoMatch(config.target_modules.clone()).into());
        }
        meta.lora = Some(config);
        Ok(Self {
            bert,
            meta: Arc::new(meta),
        })
    }

    /// The attached LoRA configuration, if any.
    pub fn lora_config(&self) -> Option<&LoraConfig> {
        self.meta.lora.as_ref()
    }

    /// Folds the adapters into the base weights and removes them. The merged model's
    /// parameters are all trainable again.
    pub fn merge_lora(self) -> Self {
        let mut meta = (*self.meta).clone();
        meta.lora = None;
        let Ok(bert) = self
            .bert
            .map_dense(&mut |_, dense| Ok::<_, std::convert::Infallible>(dense.merge()));
        Self {
            bert: bert.map(&mut RequireGrad),
            meta: Arc::new(meta),
        }
    }

    /// Drops the adapters without merging them, leaving the (frozen) base model; its
    /// parameters are trainable again.
    pub fn remove_lora(self) -> Self {
        let mut meta = (*self.meta).clone();
        meta.lora = None;
        let Ok(bert) = self.bert.map_dense(&mut |_, mut dense| {
            dense.lora = None;
            Ok::<_, std::convert::Infallible>(dense)
        });
        Self {
            bert: bert.map(&mut RequireGrad),
            meta: Arc::new(meta),
        }
    }

    /// (trainable, total) parameter counts: with adapters, only adapter tensors are trainable.
    pub fn parameter_counts(&self) -> (usize, usize) {
        let mut adapters = 0;
        for (_, dense) in self.bert.dense_layers() {
            if let Some(a) = &dense.lora {
                adapters +=
                    a.a.dims().iter().product::<usize>() + a.b.dims().iter().product::<usize>();
            }
        }
        let total = self.bert.num_params();
        if self.meta.lora.is_some() {
            (adapters, total)
        } else {
            (total, total)
        }
    }

    /// Saves the adapters alone in PEFT's format (`adapter_config.json` and
    /// `adapter_model.safetensors`), atomically.
    pub fn save_lora_adapter(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let config = self.meta.lora.as_ref().ok_or(LoraError::NotAttached)?;
        let mut tensors = Vec::new();
        for (name, dense) in self.bert.dense_layers() {
            if let Some(a) = &dense.lora {
                let (r, d_in, d_out) = (config.r, dense.d_in(), dense.d_out());
                let an = names::lora(&name, LoraFactor::A);
                tensors.push(crate::weights::NamedTensor {
                    values: tensor_values(a.a.val().transpose(), &an)?,
                    name: an,
                    shape: vec![r, d_in],
                });
                let bn = names::lora(&name, LoraFactor::B);
                tensors.push(crate::weights::NamedTensor {
                    values: tensor_values(a.b.val().transpose(), &bn)?,
                    name: bn,
                    shape: vec![d_out, r],
                });
            }
        }
        let path = dir.join("adapter_model.safetensors");
        let bytes = crate::weights::serialize(PEFT_PREFIX, &tensors, &[], &path)?;
        let base = self.meta.source.as_ref().map(|p| p.display().to_string());
        let adapter_config = serde_json::to_value(PeftAdapterConfig::from_lora(config, base))
            .map_err(|source| EncoderError::Json {
                path: dir.join("adapter_config.json"),
                source,
            })?;
        write_dir_atomically(dir, |w| {
            w.json("adapter_config.json", &adapter_config)?;
            Ok(w.bytes("adapter_model.safetensors", &bytes)?)
        })
    }

    /// Loads adapters saved in PEFT's format (by [`SentenceEncoder::save_lora_adapter`] or by
    /// PEFT) onto this base model.
    pub fn load_lora_adapter(self, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        embedtune_core::recover_interrupted(dir)?;
        let cfg_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(io_err(&cfg_path))?;
        let peft: PeftAdapterConfig =
            serde_json::from_str(&text).map_err(|source| EncoderError::Json {
                path: cfg_path.clone(),
                source,
            })?;
        if let TargetModules::One(_) = peft.target_modules {
            return Err(EncoderError::Lora {
                path: Some(cfg_path),
                source: LoraError::Unsupported("a regular-expression target_modules".into()),
            });
        }
        let config = peft.to_lora().map_err(|e| match e {
            EncoderError::Lora { source, .. } => EncoderError::Lora {
                path: Some(cfg_path.clone()),
                source,
            },
            e => e,
        })?;
        let path = dir.join("adapter_model.safetensors");
        let mut reader = WeightReader::open(&path)?;
        // The rank comes from the config file: check it against the stored matrices before
        // `with_lora` allocates `r × (in + out)` values per adapter, so that a corrupt `r`
        // (say 10¹²) is an error rather than an allocation failure.
        let mut missing = Vec::new();
        let mut targets = 0;
        for (name, dense) in self.bert.dense_layers() {
            if !config.matches(&name) {
                continue;
            }
            targets += 1;
            for (factor, expected) in [
                (LoraFactor::A, [config.r, dense.d_in()]),
                (LoraFactor::B, [dense.d_out(), config.r]),
            ] {
                let tensor = format!("{PEFT_PREFIX}{}", names::lora(&name, factor));
                match reader.shape(&tensor) {
                    None => missing.push(format!("{}{tensor}", reader.prefix())),
                    Some(found) if found != expected => {
                        return Err(EncoderError::TensorShape {
                            path,
                            name: format!("{}{tensor}", reader.prefix()),
                            expected: expected.to_vec(),
                            found: found.to_vec(),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        if targets == 0 {
            return Err(EncoderError::Lora {
                path: Some(cfg_path),
                source: LoraError::NoMatch(config.target_modules.clone()),
            });
        }
        if !missing.is_empty() {
            return Err(EncoderError::MissingTensors {
                path,
                names: missing,
            });
        }
        let device = self.device();
        let with = self.with_lora(config.clone(), 0)?;
        let mut meta = (*with.meta).clone();
        let bert = with.bert.map_dense(&mut |name, dense| {
            if dense.lora.is_none() {
                return Ok::<_, EncoderError>(dense);
            }
            let (d_in, d_out) = (dense.d_in(), dense.d_out());
            let a: Tensor<B, 2> = reader.tensor(
                &format!("{PEFT_PREFIX}{}", names::lora(name, LoraFactor::A)),
                [config.r, d_in],
                &device,
            )?;
            let b: Tensor<B, 2> = reader.tensor(
                &format!("{PEFT_PREFIX}{}", names::lora(name, LoraFactor::B)),
                [d_out, config.r],
                &device,
            )?;
            Ok(crate::dense::Dense {
                lora: Some(LoraAdapter::from_tensors(
                    a.transpose(),
                    b.transpose(),
                    &config,
                )),
                ..dense
            })
        })?;
        // Adapters for modules this model lacks (e.g. PEFT's pooler.dense) are ignored; every
        // adapter this model needs must be present.
        reader.check_missing()?;
        meta.lora = Some(config);
        Ok(Self {
            bert,
            meta: Arc::new(meta),
        })
    }
}
