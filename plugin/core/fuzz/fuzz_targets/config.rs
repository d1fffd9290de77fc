//! Fuzzes the plugin config parser: never panics, errors stay short, parsing is deterministic.
#![no_main]

use gatetrace_core::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Config::from_json(data) {
        Ok(config) => {
            assert_eq!(Config::from_json(data).ok(), Some(config.clone()));
            assert!((0.0..=1.0).contains(&config.sample_ratio));
            assert!(config.spool.layout.window_secs >= 1 && config.spool.layout.max_windows >= 2);
        }
        Err(err) => assert!(err.to_string().len() < 2048, "{err}"),
    }
});
