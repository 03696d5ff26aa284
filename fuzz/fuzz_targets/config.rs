//! `config`: the configuration loader, `supermq::Config::from_toml_str`, on arbitrary text
//! (what `supermq -c FILE` and `supermq -t` read).
//!
//! Checked, besides "never panics" (the loader maps every `toml`/`serde` error to a line and
//! key, which involves span arithmetic on the text):
//! - an error names a line inside the text (1 to the number of lines + 1, for an error at the
//!   very end) and a column inside that line, and displays as a single line;
//! - a config that loads satisfies the relations the loader promises (at least one listener,
//!   unique listener names, `min_keep_alive <= max_keep_alive`), and loading is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supermq::config::ConfigError;
use supermq::Config;

fuzz_target!(|data: &[u8]| {
    // Config files are read as UTF-8 text; anything else fails before the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text) {
        Ok(config) => {
            assert!(!config.listeners.is_empty(), "no listener");
            for (i, l) in config.listeners.iter().enumerate() {
                assert!(
                    config.listeners[..i].iter().all(|e| e.name != l.name),
                    "duplicate listener name {:?}",
                    l.name
                );
            }
            assert!(config.limits.min_keep_alive <= config.limits.max_keep_alive);
            let again = Config::from_toml_str(text).expect("loads twice");
            assert_eq!(config, again, "loading is not deterministic");
        }
        Err(e) => {
            // `str::lines` drops a final empty line; an error may sit just past the text.
            let lines = text.split('\n').count();
            let message = e.to_string();
            assert!(!message.contains('\n'), "multi-line error: {message:?}");
            match e {
                ConfigError::Syntax { line, column, .. } => {
                    assert!((1..=lines).contains(&line), "line {line} of {lines}");
                    let len = text
                        .split('\n')
                        .nth(line - 1)
                        .map_or(0, |l| l.chars().count());
                    assert!(
                        (1..=len + 1).contains(&column),
                        "column {column} of a {len}-character line"
                    );
                }
                ConfigError::Invalid { line, key, .. } => {
                    assert!((1..=lines).contains(&line), "line {line} of {lines}: {key}");
                    assert!(!key.is_empty());
                }
                ConfigError::Read { .. } => panic!("read error from text"),
            }
        }
    }
});
