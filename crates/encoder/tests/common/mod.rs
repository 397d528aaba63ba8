//! Helpers shared by the encoder's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared assets folder from `EMBEDTUNE_SHARED`, or `None` with a printed reason.
pub fn shared(test: &str) -> Option<PathBuf> {
    match std::env::var_os("EMBEDTUNE_SHARED") {
        Some(p) if PathBuf::from(&p).is_dir() => Some(PathBuf::from(p)),
        Some(p) => {
            eprintln!(
                "skipping {test}: EMBEDTUNE_SHARED={} is not a directory",
                PathBuf::from(p).display()
            );
            None
        }
        None => {
            eprintln!("skipping {test}: EMBEDTUNE_SHARED is not set (point it at the shared assets folder)");
            None
        }
    }
}

/// burn-ndarray's random generator is global to the process: tests that seed it or draw from it
/// (random models, dropout) hold this while they do, so that each sees only its own draws.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn minilm(test: &str) -> Option<PathBuf> {
    let dir = shared(test)?.join("models/all-MiniLM-L6-v2");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping {test}: {} is missing", dir.display());
        None
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
