//! The layout rules `cargo xtask test` enforces: no import circle between the files of a crate
//! (edges: `mod x;` and every `crate::`/`super::`/`self::` path except those into the file's own
//! enclosing modules, which contain it), and no `.rs` file over
//! [`MAX_LINES`] lines unless one of its first lines carries a [`SIZE_MARKER`] comment saying why.
//!
//! Hand-written: `cargo modules` needs a nightly-compatible rust-analyzer build and reports
//! item-level, not file-level, edges. Test code is left out of the graph, since a test module
//! reads its parent by design: files declared under `#[cfg(test)]` or named `tests.rs` (with
//! everything below them), and inline `#[cfg(test)] mod … { … }` blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Longest `.rs` file allowed without a reason.
pub const MAX_LINES: usize = 700;
/// The comment that explains a longer file (within its first [`MARKER_LINES`] lines).
pub const SIZE_MARKER: &str = "// size:";
const MARKER_LINES: usize = 10;
/// Directories never searched for crates or sources.
const SKIPPED_DIRS: [&str; 4] = ["target", ".git", "node_modules", ".config"];

/// A module path inside one crate (`["sinks", "otlp"]`); the crate root is empty.
type ModPath = Vec<String>;

/// Checks every crate under `root`; the error names each circle and each oversized file.
pub fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for crate_dir in crate_dirs(root) {
        problems.extend(circles(&crate_dir.join("src"), root));
        problems.extend(oversized(&crate_dir, root));
    }
    if problems.is_empty() {
        println!("layout: no import circle, no unexplained file over {MAX_LINES} lines");
        return Ok(());
    }
    bail!("{}", problems.join("\n"))
}

/// Directories holding a `Cargo.toml` with a `src/` beside it.
fn crate_dirs(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
            found.push(dir.clone());
        }
        for entry in read_dir_sorted(&dir) {
            let skipped = entry
                .file_name()
                .and_then(|name| name.to_str())
                .is_none_or(|name| SKIPPED_DIRS.contains(&name));
            if entry.is_dir() && !skipped {
                stack.push(entry);
            }
        }
    }
    found.sort();
    found
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    entries
}

/// Every `.rs` file of the crate over [`MAX_LINES`] lines without a [`SIZE_MARKER`].
fn oversized(crate_dir: &Path, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut stack = vec![crate_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in read_dir_sorted(&dir) {
            let name = entry.file_name().and_then(|name| name.to_str());
            if entry.is_dir() {
                // Nested crates are checked on their own.
                if !name.is_none_or(|name| SKIPPED_DIRS.contains(&name))
                    && !entry.join("Cargo.toml").is_file()
                {
                    stack.push(entry);
                }
            } else if name.is_some_and(|name| name.ends_with(".rs")) {
                let text = std::fs::read_to_string(&entry).unwrap_or_default();
                let lines = text.lines().count();
                let explained = text
                    .lines()
                    .take(MARKER_LINES)
                    .any(|line| line.trim_start().starts_with(SIZE_MARKER));
                if lines > MAX_LINES && !explained {
                    problems.push(format!(
                        "{}: {lines} lines (over {MAX_LINES}): split it, or say why in a \
                         `{SIZE_MARKER} …` comment in its first {MARKER_LINES} lines",
                        relative(&entry, root)
                    ));
                }
            }
        }
    }
    problems
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// One non-test source file of a crate.
#[derive(Debug)]
struct Module {
    path: ModPath,
    file: PathBuf,
    /// Files this one declares with `mod x;` (test children left out).
    children: Vec<ModPath>,
    /// The code with comments and test blocks removed.
    code: String,
}

/// The circles among the files under `src` (one line each, naming the files in order).
fn circles(src: &Path, root: &Path) -> Vec<String> {
    let mut modules: BTreeMap<ModPath, Module> = BTreeMap::new();
    let roots = ["lib.rs", "main.rs"]
        .into_iter()
        .map(|name| src.join(name))
        .chain(read_dir_sorted(&src.join("bin")))
        .filter(|file| file.extension().is_some_and(|ext| ext == "rs"));
    for (index, file) in roots.enumerate() {
        // Each root is its own module tree; `lib.rs` gets the empty path, others a tag that
        // cannot clash with a module name.
        let path = if index == 0 && file.ends_with("lib.rs") {
            Vec::new()
        } else {
            vec![format!("<{}>", file.display())]
        };
        load(&file, path, true, &mut modules);
    }
    let mut edges: BTreeMap<&ModPath, BTreeSet<&ModPath>> = BTreeMap::new();
    for module in modules.values() {
        let targets = edges.entry(&module.path).or_default();
        for child in &module.children {
            if let Some((child, _)) = modules.get_key_value(child) {
                targets.insert(child);
            }
        }
        for used in used_paths(&module.code) {
            let Some(absolute) = resolve(&module.path, &used) else {
                continue;
            };
            // A binary's paths carry its tag first; never resolve them to the library root.
            let shortest = usize::from(absolute.first().is_some_and(|s| s.starts_with('<')));
            let target = (shortest..=absolute.len())
                .rev()
                .find_map(|len| modules.get_key_value(&absolute[..len]).map(|(key, _)| key));
            // A file reading its enclosing modules (`super::Shared`) is containment, not a
            // circle: the parent owns the child and Rust lets it see the parent's items.
            if let Some(target) = target.filter(|target| !module.path.starts_with(target)) {
                targets.insert(target);
            }
        }
    }
    find_cycles(&edges)
        .into_iter()
        .map(|cycle| {
            let files: Vec<String> = cycle
                .iter()
                .map(|path| relative(&modules[*path].file, root))
                .collect();
            format!("import circle: {}", files.join(" → "))
        })
        .collect()
}

/// Reads `file` as module `path` and, recursively, the files it declares.
fn load(file: &Path, path: ModPath, is_dir_owner: bool, modules: &mut BTreeMap<ModPath, Module>) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let code = strip_test_blocks(&strip_comments(&text));
    let dir = if is_dir_owner {
        file.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        file.with_extension("")
    };
    let mut children = Vec::new();
    for (name, is_test) in declared_modules(&strip_comments(&text)) {
        if is_test || name == "tests" {
            continue;
        }
        let mut child_path = path.clone();
        child_path.push(name.clone());
        let flat = dir.join(format!("{name}.rs"));
        let nested = dir.join(&name).join("mod.rs");
        if flat.is_file() {
            load(&flat, child_path.clone(), false, modules);
        } else if nested.is_file() {
            load(&nested, child_path.clone(), true, modules);
        } else {
            continue;
        }
        children.push(child_path);
    }
    modules.insert(
        path.clone(),
        Module {
            path,
            file: file.to_path_buf(),
            children,
            code,
        },
    );
}

/// Line and block comments removed (string contents are kept; a `//` inside a string literal
/// cuts the rest of that line, which only ever loses edges).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for line in text.lines() {
        let mut rest = line;
        while !rest.is_empty() {
            if depth > 0 {
                match (rest.find("/*"), rest.find("*/")) {
                    (Some(open), Some(close)) if open < close => {
                        depth += 1;
                        rest = &rest[open + 2..];
                    }
                    (_, Some(close)) => {
                        depth -= 1;
                        rest = &rest[close + 2..];
                    }
                    _ => rest = "",
                }
            } else {
                match (rest.find("//"), rest.find("/*")) {
                    (Some(line_at), block) if block.is_none_or(|block| line_at < block) => {
                        out.push_str(&rest[..line_at]);
                        rest = "";
                    }
                    (_, Some(block)) => {
                        out.push_str(&rest[..block]);
                        depth += 1;
                        rest = &rest[block + 2..];
                    }
                    _ => {
                        out.push_str(rest);
                        rest = "";
                    }
                }
            }
        }
        out.push('\n');
    }
    out
}

/// `#[cfg(test)]` items with a `{ … }` body removed (inline test modules and helpers).
fn strip_test_blocks(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        // Skip the attributed item: up to its closing brace (or `;` for a one-line item).
        let mut depth = 0i64;
        let mut opened = false;
        for item_line in lines.by_ref() {
            depth += count(item_line, '{') - count(item_line, '}');
            opened |= item_line.contains('{');
            if (opened && depth <= 0) || (!opened && item_line.trim_end().ends_with(';')) {
                break;
            }
        }
    }
    out
}

fn count(line: &str, wanted: char) -> i64 {
    line.chars().filter(|c| *c == wanted).count() as i64
}

/// The `mod name;` declarations of a file, each with whether `#[cfg(test)]` guards it.
fn declared_modules(code: &str) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    let mut test_attr = false;
    for line in code.lines().map(str::trim) {
        if line == "#[cfg(test)]" {
            test_attr = true;
            continue;
        }
        let declaration = line
            .strip_prefix("pub ")
            .or_else(|| line.strip_prefix("pub(crate) "))
            .or_else(|| line.strip_prefix("pub(super) "))
            .unwrap_or(line);
        if let Some(name) = declaration
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
        {
            found.push((name.trim().to_owned(), test_attr));
        }
        if !line.starts_with("#[") {
            test_attr = false;
        }
    }
    found
}

/// Every path the code names from `crate`, `super` or `self`, `use` trees expanded.
fn used_paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for statement in code.split(';') {
        let squeezed: String = statement.chars().filter(|c| !c.is_whitespace()).collect();
        let tree = ["pubuse", "pub(crate)use", "pub(super)use", "use"]
            .iter()
            .find_map(|prefix| {
                squeezed
                    .rfind(&format!("}}{prefix}"))
                    .map(|at| &squeezed[at + 1 + prefix.len()..])
                    .or_else(|| squeezed.strip_prefix(prefix))
            });
        if let Some(tree) = tree {
            expand_use_tree(tree, &mut Vec::new(), &mut found);
        }
    }
    // Paths in expressions and types (`crate::clock::now()`).
    let bytes = code.as_bytes();
    for keyword in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(keyword) {
            let starts_word = at == 0 || !is_ident_byte(bytes[at - 1]) && bytes[at - 1] != b':';
            if !starts_word {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |len| at + len);
            let segments: Vec<String> = code[at..end]
                .split("::")
                .filter(|segment| !segment.is_empty())
                .map(str::to_owned)
                .collect();
            // A bare `crate::{…}` is a use tree, expanded above.
            if segments.len() > 1 {
                found.push(segments);
            }
        }
    }
    found
        .into_iter()
        .filter(|path| {
            path.first()
                .is_some_and(|first| ["crate", "super", "self"].contains(&first.as_str()))
        })
        .collect()
}

fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Expands `a::{b, c::{d, e}}` (whitespace removed) into full paths after `prefix`.
fn expand_use_tree(tree: &str, prefix: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    let tree = tree.trim_end_matches(',');
    let (head, group) = match tree.find('{') {
        Some(open) if tree.ends_with('}') => (&tree[..open], Some(&tree[open + 1..tree.len() - 1])),
        _ => (tree, None),
    };
    let before = prefix.len();
    for segment in head.split("::").filter(|segment| !segment.is_empty()) {
        let segment = segment.split("as").next().unwrap_or(segment);
        if segment != "*" {
            prefix.push(segment.to_owned());
        }
    }
    match group {
        None => found.push(prefix.clone()),
        Some(group) => {
            for item in split_top_level(group) {
                if item == "self" {
                    found.push(prefix.clone());
                } else {
                    expand_use_tree(item, prefix, found);
                }
            }
        }
    }
    prefix.truncate(before);
}

/// Splits `a,b::{c,d},e` at its top-level commas.
fn split_top_level(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items.into_iter().filter(|item| !item.is_empty()).collect()
}

/// `used` (starting at `crate`, `super` or `self`) as a path from the crate root, read from
/// module `from`; `None` when it climbs above the root.
fn resolve(from: &ModPath, used: &[String]) -> Option<ModPath> {
    let mut segments = used.iter().peekable();
    let mut base: ModPath = match segments.next().map(String::as_str) {
        Some("crate") => from
            .first()
            .filter(|first| first.starts_with('<'))
            .into_iter()
            .cloned()
            .collect(),
        Some("self") => from.clone(),
        Some("super") => {
            let mut base = from.clone();
            if base.pop()?.starts_with('<') {
                return None;
            }
            base
        }
        _ => return None,
    };
    while segments.peek().is_some_and(|segment| *segment == "super") {
        segments.next();
        base.pop()?;
    }
    base.extend(segments.cloned());
    Some(base)
}

/// The circles a depth-first search meets (one per set of files that share any), each listed from its first
/// file back to it.
fn find_cycles<'a>(edges: &BTreeMap<&'a ModPath, BTreeSet<&'a ModPath>>) -> Vec<Vec<&'a ModPath>> {
    let mut cycles = Vec::new();
    let mut done: BTreeSet<&ModPath> = BTreeSet::new();
    for &start in edges.keys() {
        if done.contains(start) {
            continue;
        }
        // Depth-first search keeping the current path; a back edge to a node on the path is
        // a circle.
        let mut on_path: Vec<&ModPath> = Vec::new();
        let mut stack: Vec<(&ModPath, Vec<&ModPath>)> = vec![(start, next_of(edges, start))];
        on_path.push(start);
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            let Some(next) = pending.pop() else {
                done.insert(node);
                stack.pop();
                on_path.pop();
                continue;
            };
            if let Some(at) = on_path.iter().position(|seen| *seen == next) {
                let mut cycle = on_path[at..].to_vec();
                cycle.push(next);
                if !cycles
                    .iter()
                    .any(|known: &Vec<&ModPath>| overlaps(known, &cycle))
                {
                    cycles.push(cycle);
                }
            } else if !done.contains(next) {
                on_path.push(next);
                stack.push((next, next_of(edges, next)));
            }
        }
    }
    cycles
}

fn next_of<'a>(
    edges: &BTreeMap<&'a ModPath, BTreeSet<&'a ModPath>>,
    node: &ModPath,
) -> Vec<&'a ModPath> {
    edges
        .get(node)
        .map(|targets| targets.iter().rev().copied().collect())
        .unwrap_or_default()
}

/// Whether two circles share a file: one report per tangle; fixing it reveals the next.
fn overlaps(a: &[&ModPath], b: &[&ModPath]) -> bool {
    a.iter().any(|path| b.contains(path))
}

#[cfg(test)]
mod tests;
