//! A checkpoint's `trainer_state.json` (`TrainerState::from_json_str`): never panics; errors
//! name the file; what parses serialises and parses back to the same step and history.
#![no_main]

use embedtune_train::checkpoint::TrainerState;
use embedtune_train::TrainConfig;
use libfuzzer_sys::fuzz_target;

include!("scratch.rs");

fn seeds() {
    let config = TrainConfig::default();
    let state = serde_json::json!({
        "format_version": 1,
        "step": 12,
        "history": [],
        "evals": [],
        "best": null,
        "config": config,
        "base_model": "/models/all-MiniLM-L6-v2",
    });
    write_seeds(&[("fresh".into(), serde_json::to_vec_pretty(&state).unwrap())]);
}

fuzz_target!(
    init: {
        seeds();
    },
    |data: &[u8]| {
    let path = Path::new("/run/checkpoint/step-12/trainer_state.json");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match TrainerState::from_json_str(text, path) {
        Ok(state) => {
            let again = serde_json::to_string(&state).expect("serialise a parsed state");
            let back = TrainerState::from_json_str(&again, path).expect("round trip");
            assert_eq!(back.step, state.step);
            assert_eq!(back.history.len(), state.history.len());
            assert_eq!(back.evals.len(), state.evals.len());
        }
        Err(e) => assert_names(&e, path),
    }
});
