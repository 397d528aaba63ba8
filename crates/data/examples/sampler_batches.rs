//! Writes the batches the training loop draws from a training file, so that another trainer
//! (sentence-transformers, `scripts/st_same_batches.py`) can be fed exactly the same ones.
//!
//! ```text
//! cargo run --release -p embedtune-data --example sampler_batches -- \
//!     DATA.jsonl SEED OUT.json [--epochs 2] [--batch-size 32] [--allow-duplicates]
//! ```
//!
//! The sampler is built as `embedtune_train`'s trainer builds it (`BatchSampler::new(batch)
//! .seed(seed).no_duplicates(..)`, batches of epoch `e` from `batches(&examples, e)`), so with
//! the same data, seed, batch size and duplicate rule the file holds the batches a
//! `finetune_e5 --seed SEED` run trains on (without re-mining, which changes the examples).
//! Output: `{"examples": [[anchor, positive, negative...], ...], "epochs": [[[index, ...], ...], ...]}`.

use std::error::Error;
use std::fs;
use std::process::ExitCode;

use embedtune_data::{read_examples, BatchSampler, ReadOptions};
use serde_json::json;

const USAGE: &str =
    "usage: sampler_batches DATA SEED OUT [--epochs N] [--batch-size N] [--allow-duplicates]";

/// `value` as a number, or an error naming `what`.
fn number<T: std::str::FromStr>(what: &str, value: Option<String>) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let value = value.ok_or_else(|| format!("{what} needs a value\n{USAGE}"))?;
    value
        .parse()
        .map_err(|e| format!("{what} {value:?}: {e}\n{USAGE}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sampler_batches: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut positional = Vec::new();
    let (mut epochs, mut batch_size, mut no_duplicates) = (2u64, 32usize, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--epochs" => epochs = number(&arg, args.next())?,
            "--batch-size" => batch_size = number(&arg, args.next())?,
            "--allow-duplicates" => no_duplicates = false,
            _ if arg.starts_with("--") => {
                return Err(format!("unknown option {arg}\n{USAGE}").into())
            }
            _ => positional.push(arg),
        }
    }
    let [data, seed, out] = <[String; 3]>::try_from(positional).map_err(|_| USAGE)?;
    let seed: u64 = number("SEED", Some(seed))?;

    let examples = read_examples(&data, &ReadOptions::default())?.items;
    let sampler = BatchSampler::new(batch_size)?
        .seed(seed)
        .no_duplicates(no_duplicates);
    let per_epoch: Vec<Vec<Vec<usize>>> =
        (0..epochs).map(|e| sampler.batches(&examples, e)).collect();
    let rows: Vec<Vec<&str>> = examples
        .iter()
        .map(|ex| {
            let mut row = vec![ex.anchor.as_str(), ex.positive.as_str()];
            row.extend(ex.negatives.iter().map(String::as_str));
            row
        })
        .collect();

    let tmp = format!("{out}.tmp");
    fs::write(
        &tmp,
        json!({"examples": rows, "epochs": per_epoch}).to_string(),
    )?;
    fs::rename(&tmp, &out)?;
    let counts: Vec<usize> = per_epoch.iter().map(Vec::len).collect();
    println!(
        "{} examples, batches per epoch {counts:?} -> {out}",
        examples.len()
    );
    Ok(())
}
