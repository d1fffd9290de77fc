//! The layout checker on small synthetic crates written to a scratch directory.

use super::*;

/// A scratch crate removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("xtask-layout-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"scratch\"\n").unwrap();
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Self(dir)
    }

    fn circles(&self) -> Vec<String> {
        circles(&self.0.join("src"), &self.0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_sibling_circle_through_use_is_named_file_by_file() {
    let scratch = Scratch::new(
        "sibling",
        &[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "use crate::b::Thing;\npub struct Other;\n"),
            (
                "src/b.rs",
                "pub struct Thing;\nfn f() -> crate::a::Other { crate::a::Other }\n",
            ),
        ],
    );
    assert_eq!(
        scratch.circles(),
        ["import circle: src/a.rs → src/b.rs → src/a.rs"]
    );
}

#[test]
fn a_child_reaching_past_its_parent_into_a_reader_of_it_is_a_circle() {
    let scratch = Scratch::new(
        "parent",
        &[
            ("src/lib.rs", "pub mod sinks;\npub mod metrics;\n"),
            ("src/sinks/mod.rs", "pub mod otlp;\npub struct Shared;\n"),
            ("src/sinks/otlp/mod.rs", "mod config;\n"),
            (
                "src/sinks/otlp/config.rs",
                "use crate::{sinks::{Shared, otlp}, metrics::{names::{A, B}}};\n",
            ),
            ("src/metrics.rs", "use crate::sinks::Shared;\n"),
        ],
    );
    assert_eq!(
        scratch.circles(),
        [
            "import circle: src/metrics.rs → src/sinks/mod.rs → src/sinks/otlp/mod.rs \
          → src/sinks/otlp/config.rs → src/metrics.rs"
        ]
    );
}

#[test]
fn test_modules_comments_and_downward_edges_make_no_circle() {
    let scratch = Scratch::new(
        "clean",
        &[
            (
                "src/lib.rs",
                "mod clock;\nmod state;\n#[cfg(test)]\nmod fixtures;\n",
            ),
            ("src/clock.rs", "pub fn now() -> u64 { 0 }\n"),
            (
                "src/state.rs",
                "use crate::clock;\n// crate::lib_item would be a circle\n/* use crate::state; */\n\
                 #[cfg(test)]\nmod tests {\n    use crate::fixtures;\n    use super::*;\n}\n\
                 #[cfg(test)]\nmod more;\n",
            ),
            ("src/state/more.rs", "use super::super::state;\n"),
            ("src/fixtures.rs", "use crate::state;\n"),
            ("src/state/tests.rs", "use super::*;\n"),
        ],
    );
    assert_eq!(scratch.circles(), Vec::<String>::new());
}

#[test]
fn self_and_super_paths_resolve_from_the_reading_file() {
    assert_eq!(
        resolve(&vec!["a".into(), "b".into()], &["super".into(), "c".into()]),
        Some(vec!["a".into(), "c".into()])
    );
    assert_eq!(
        resolve(&vec!["a".into()], &["self".into(), "x".into()]),
        Some(vec!["a".into(), "x".into()])
    );
    assert_eq!(resolve(&Vec::new(), &["super".into(), "x".into()]), None);
    let mut found = Vec::new();
    expand_use_tree(
        "crate::a::{self,b::{C,D},e::*}",
        &mut Vec::new(),
        &mut found,
    );
    let expected: Vec<Vec<String>> = [
        vec!["crate", "a"],
        vec!["crate", "a", "b", "C"],
        vec!["crate", "a", "b", "D"],
        vec!["crate", "a", "e"],
    ]
    .iter()
    .map(|path| path.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn long_files_need_a_size_comment() {
    let long = "fn f() {}\n".repeat(MAX_LINES + 1);
    let explained = format!("//! Module doc.\n{SIZE_MARKER} one table of 800 cases\n{long}");
    let scratch = Scratch::new(
        "size",
        &[
            ("src/lib.rs", "mod long;\nmod explained;\n"),
            ("src/long.rs", &long),
            ("src/explained.rs", &explained),
            ("tests/short.rs", "fn g() {}\n"),
        ],
    );
    let found = oversized(&scratch.0, &scratch.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("src/long.rs: 701 lines"), "{found:?}");
}
