//! The index container (`load_index`: header, section table, checksums, manifest, flat vectors,
//! HNSW graph and data dumps): never panics; a loaded index is usable and saves and reloads.
//!
//! Input: first byte `0` (even): the file's bytes as they are. Odd: the container is built
//! here with correct lengths and checksums (bit 1 picks flat or HNSW) from the rest split at
//! `SEP`, so that mutations reach the manifest and the dumps instead of failing a checksum.
#![no_main]

use embedtune_index::{load_index_from_bytes, FlatIndex, HnswIndex, HnswParams, Metric};
use embedtune_index::{Embeddings, VectorIndex, FORMAT_VERSION, MAGIC};
use libfuzzer_sys::fuzz_target;

include!("scratch.rs");

const SEP: &[u8] = b"\xffSECTION\xff";

fn container(kind: u32, sections: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for s in sections {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast_hash(s).to_le_bytes());
    }
    let crc = crc32fast_hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for s in sections {
        out.extend_from_slice(s);
    }
    out
}

/// CRC-32 (IEEE), bitwise: the fuzz crate does not depend on crc32fast.
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Splits a saved file back into its sections (for the structured seeds).
fn sections(file: &[u8]) -> Vec<&[u8]> {
    let count = u32::from_le_bytes(file[16..20].try_into().unwrap()) as usize;
    let mut at = 24 + 12 * count;
    (0..count)
        .map(|i| {
            let len =
                u64::from_le_bytes(file[20 + 12 * i..28 + 12 * i].try_into().unwrap()) as usize;
            at += len;
            &file[at - len..at]
        })
        .collect()
}

fn seeds() {
    let dir = scratch("index_file-seeds");
    let mut out = Vec::new();
    let values: Vec<f32> = (0..40 * 8)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let vectors = Embeddings::new(values, 8).unwrap();
    let ids: Vec<String> = (0..40).map(|i| format!("doc{i}")).collect();
    for (name, index) in [
        (
            "flat",
            Box::new(FlatIndex::new(8, Metric::Cosine).unwrap()) as Box<dyn VectorIndex>,
        ),
        (
            "flat-dot",
            Box::new(FlatIndex::new(8, Metric::InnerProduct).unwrap()),
        ),
        (
            "hnsw",
            Box::new(HnswIndex::new(8, HnswParams::default()).unwrap()),
        ),
    ] {
        let mut index = index;
        let empty = dir.join(format!("{name}-empty.idx"));
        index.save(&empty).unwrap();
        index.add(&ids, &vectors).unwrap();
        if name == "hnsw" {
            index.remove(&ids[3..5]).unwrap();
        }
        let full = dir.join(format!("{name}.idx"));
        index.save(&full).unwrap();
        for (tag, path) in [("empty", empty), ("full", full)] {
            let bytes = std::fs::read(&path).unwrap();
            let kind = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
            let mut structured = vec![1u8 | if kind == 2 { 2 } else { 0 }];
            structured.extend(sections(&bytes).join(SEP));
            let mut raw = vec![0u8];
            raw.extend_from_slice(&bytes);
            out.push((format!("{name}-{tag}-raw"), raw));
            out.push((format!("{name}-{tag}-sections"), structured));
        }
    }
    write_seeds(&out);
    let _ = std::fs::remove_dir_all(dir);
}

fuzz_target!(
    init: {
        seeds();
    },
    |data: &[u8]| {
    thread_local! {
        static DIR: PathBuf = scratch("index_file");
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let kind = if mode & 2 == 0 { 1 } else { 2 };
        let parts: Vec<&[u8]> = split(rest, SEP);
        container(kind, &parts)
    };
    DIR.with(|dir| {
        let path = dir.join("fuzz.idx");
        match load_index_from_bytes(bytes, &path) {
            Err(e) => assert_names(&e, &path),
            Ok(index) => {
                let dim = index.dim();
                assert!(dim > 0);
                if dim <= 4096 {
                    let query: Vec<f32> = (0..dim).map(|i| 1.0 + i as f32).collect();
                    match index.search(&query, 5) {
                        Ok(hits) => assert!(hits.len() <= 5.min(index.len())),
                        Err(embedtune_index::IndexError::EmptyIndex) if index.is_empty() => {}
                        Err(e) => panic!("search of a loaded index: {e}"),
                    }
                    index.save(&path).expect("save of a loaded index");
                    let again = embedtune_index::load_index(&path).expect("reload");
                    assert_eq!((again.dim(), again.len()), (dim, index.len()));
                }
            }
        }
    });
});

fn split<'a>(bytes: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= bytes.len() {
        if &bytes[i..i + sep.len()] == sep {
            parts.push(&bytes[start..i]);
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(&bytes[start..]);
    parts
}
