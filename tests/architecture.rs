//! The layout's rules, checked on the sources: no library module imports a stage that comes
//! after it in the pipeline, no user interface (`clap`, `indicatif`) in the library, no
//! source file over 800 lines, and no integer `as` cast outside `src/cast.rs`.
//!
//! The pipeline (see `ARCHITECTURE.md`): the foundation ([`FOUNDATION`]), which any module may
//! import and which imports only itself, then the stages of [`PIPELINE`] in order. A module
//! imports another when its code (not its comments or string literals, except a string that
//! is a whole `crate::` path, as serde's `with = "..."` takes) names it through `crate::` or
//! through `super::` paths that climb out of its own top-level module.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules any module may import; they import only each other.
const FOUNDATION: &[&str] = &["cast", "error", "fsio", "progress", "task"];

/// The stages in data-flow order: each may import the foundation and the stages before it.
const PIPELINE: &[&str] = &[
    "data", "train", "ir", "lower", "analyze", "report", "execute", "fhe", "tune", "tfhe", "deploy",
];

/// The longest source file allowed.
const MAX_LINES: usize = 800;

/// Where a top-level module stands: 0 for the foundation, then 1, 2, ... along the pipeline.
fn rank(module: &str) -> Option<usize> {
    if FOUNDATION.contains(&module) {
        return Some(0);
    }
    PIPELINE.iter().position(|m| *m == module).map(|i| i + 1)
}

/// One token of Rust source: an identifier (or keyword), a `::`, a single punctuation
/// character, or a string literal's contents.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
    Str(String),
}

/// Splits source into tokens, dropping comments (line, block, nested block) and char and
/// lifetime noise; string literals (also raw and byte strings) become one [`Tok::Str`].
fn tokenize(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            let (s, end) = string_at(&c, i + 1);
            out.push(Tok::Str(s));
            i = end;
        } else if (ch == 'r' || ch == 'b') && raw_string_start(&c, i).is_some() {
            let (hashes, open) = raw_string_start(&c, i).unwrap_or((0, i));
            let mut j = open + 1;
            let mut s = String::new();
            while j < c.len() {
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    break;
                }
                s.push(c[j]);
                j += 1;
            }
            out.push(Tok::Str(s));
            i = j + 1 + hashes;
        } else if ch == 'b' && next == Some('"') {
            let (s, end) = string_at(&c, i + 2);
            out.push(Tok::Str(s));
            i = end;
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\'') or a lifetime ('a): skip either.
            if next == Some('\\') {
                i += 3; // the quote, the backslash and the escaped character
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else if ch == ':' && next == Some(':') {
            out.push(Tok::PathSep);
            i += 2;
        } else {
            if !ch.is_whitespace() {
                out.push(Tok::Punct(ch));
            }
            i += 1;
        }
    }
    out
}

/// The contents of a normal string literal starting after its opening quote, and the index
/// after its closing quote.
fn string_at(c: &[char], mut i: usize) -> (String, usize) {
    let mut s = String::new();
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        }
        if let Some(&x) = c.get(i) {
            s.push(x);
        }
        i += 1;
    }
    (s, i + 1)
}

/// For a raw string (`r"`, `r#"`, `br##"`, ...) at `i`: its number of `#` and the index of its
/// opening quote.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if c[j] == 'b' {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((hashes, j))
}

/// The module path of a source file under `src/` (`src/ir/format.rs` → `[ir, format]`,
/// `src/ir/mod.rs` → `[ir]`, `src/lib.rs` → `[]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The top-level modules a file's code names, besides its own: `crate::X` (also inside
/// `crate::{...}` groups and whole-path strings) and `super::` paths that climb to the crate
/// root and name `X`. `path` is the file's module path; inline `mod name { ... }` blocks are
/// followed, so `super::` inside them climbs from the right place.
fn imports(path: &[String], src: &str) -> BTreeSet<String> {
    let toks = tokenize(src);
    let mut found = BTreeSet::new();
    // The module path at each brace depth where an inline module opened.
    let mut mods: Vec<(usize, String)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_mod: Option<String> = None;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('{') => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    mods.push((depth, name));
                }
            }
            Tok::Punct('}') => {
                if mods.last().is_some_and(|(d, _)| *d == depth) {
                    mods.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Punct(';') => pending_mod = None,
            Tok::Ident(k) if k == "mod" => {
                if let Some(Tok::Ident(name)) = toks.get(i + 1) {
                    pending_mod = Some(name.clone());
                }
            }
            Tok::Str(s) => {
                let segs: Vec<&str> = s.split("::").collect();
                let is_path = segs.len() >= 2
                    && segs.iter().all(|p| {
                        !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_')
                    });
                if is_path && segs[0] == "crate" {
                    found.insert(segs[1].to_string());
                }
            }
            Tok::Ident(k) if k == "crate" && toks.get(i + 1) == Some(&Tok::PathSep) => {
                // Not `pub(crate)` or `$crate`: those are not followed by `::`.
                found.extend(first_segments(&toks, i + 2));
            }
            Tok::Ident(k)
                if k == "super"
                    && toks.get(i + 1) == Some(&Tok::PathSep)
                    && !matches!(toks.get(i.wrapping_sub(1)), Some(Tok::PathSep)) =>
            {
                let mut here: Vec<String> = path.to_vec();
                here.extend(mods.iter().map(|(_, m)| m.clone()));
                let mut j = i;
                while toks.get(j) == Some(&Tok::Ident("super".into()))
                    && toks.get(j + 1) == Some(&Tok::PathSep)
                {
                    here.pop();
                    j += 2;
                }
                match here.first() {
                    Some(top) => {
                        found.insert(top.clone());
                    }
                    None => found.extend(first_segments(&toks, j)),
                }
            }
            _ => {}
        }
    }
    if let Some(own) = path.first() {
        found.remove(own);
    }
    found
}

/// The first path segments at token `i`: one identifier, or each item's first identifier in a
/// `{a::b, c, d::{e, f}}` group.
fn first_segments(toks: &[Tok], i: usize) -> Vec<String> {
    match toks.get(i) {
        Some(Tok::Ident(name)) => vec![name.clone()],
        Some(Tok::Punct('{')) => {
            let mut out = Vec::new();
            let mut depth = 0usize;
            let mut expect = true;
            for t in &toks[i..] {
                match t {
                    Tok::Punct('{') => {
                        depth += 1;
                        expect = depth == 1;
                    }
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Punct(',') if depth == 1 => expect = true,
                    Tok::Ident(name) if expect && depth == 1 => {
                        out.push(name.clone());
                        expect = false;
                    }
                    _ => expect = false,
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Library files (not under `src/bin/`) with their path relative to `src/` and their text.
fn library_files() -> Vec<(PathBuf, String)> {
    let src = src_dir();
    rust_files(&src)
        .into_iter()
        .map(|p| p.strip_prefix(&src).unwrap().to_path_buf())
        .filter(|rel| !rel.starts_with("bin"))
        .map(|rel| {
            let text = std::fs::read_to_string(src.join(&rel)).unwrap();
            (rel, text)
        })
        .collect()
}

/// The broken import rules of one library file: each import of a later stage (or a stage
/// imported by the foundation), and each top-level module the order does not list.
fn violations(rel: &Path, text: &str) -> Vec<String> {
    let path = module_path(rel);
    let Some(own) = path.first() else {
        return Vec::new(); // lib.rs declares and re-exports every module
    };
    let Some(own_rank) = rank(own) else {
        return vec![format!(
            "{}: top-level module `{own}` is in neither FOUNDATION nor PIPELINE of \
             tests/architecture.rs: give it its place",
            rel.display()
        )];
    };
    let mut out = Vec::new();
    for m in imports(&path, text) {
        match rank(&m) {
            // Not a module of this crate (an item of the crate root, such as `crate::Result`).
            None => {}
            Some(0) => {}
            Some(r) if own_rank == 0 || r >= own_rank => out.push(format!(
                "{}: `{own}` imports `{m}`, which stands after it in the pipeline",
                rel.display()
            )),
            Some(_) => {}
        }
    }
    out
}

#[test]
fn no_module_imports_a_later_stage() {
    let mut bad = Vec::new();
    for (rel, text) in library_files() {
        bad.extend(violations(&rel, &text));
    }
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

#[test]
fn no_source_file_is_over_800_lines() {
    let src = src_dir();
    let long: Vec<String> = rust_files(&src)
        .into_iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(&p).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{}: {n} lines", p.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// Integer types an `as` cast may truncate, wrap or (between widths clippy calls lossless,
/// such as `usize as u64`) silently depend on the target.
const INTEGER_TYPES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
];

/// The integer `as` casts allowed outside `src/cast.rs`, by file and the token before `as`,
/// each with why it is exact.
const CASTS_ALLOWED: &[(&str, &str)] = &[
    // A fieldless enum's discriminant, declaration order from 0: `as` is Rust's only way.
    ("fhe/catalogue.rs", "self"),
];

/// Every integer `as` cast in the code (not comments or strings) of `src/` outside
/// `src/cast.rs` and [`CASTS_ALLOWED`], as `file: expr as type`.
fn integer_casts() -> Vec<String> {
    let src = src_dir();
    let mut out = Vec::new();
    for p in rust_files(&src) {
        let rel = p.strip_prefix(&src).unwrap().display().to_string();
        if rel == "cast.rs" {
            continue;
        }
        let toks = tokenize(&std::fs::read_to_string(&p).unwrap());
        for w in toks.windows(3) {
            let [before, Tok::Ident(kw), Tok::Ident(ty)] = w else {
                continue;
            };
            if kw != "as" || !INTEGER_TYPES.contains(&ty.as_str()) {
                continue;
            }
            let before = match before {
                Tok::Ident(x) => x.clone(),
                Tok::Punct(c) => c.to_string(),
                other => format!("{other:?}"),
            };
            if !CASTS_ALLOWED.contains(&(rel.as_str(), before.as_str())) {
                out.push(format!("{rel}: … {before} as {ty}"));
            }
        }
    }
    out
}

/// The rule "no silent truncation: checked arithmetic, `try_from`, or the casts module".
/// Clippy's cast lints (Cargo.toml) refuse the casts that may truncate, wrap or lose a sign;
/// this also refuses the ones clippy calls lossless (`usize as u64`, `u32 as usize`), whose
/// exactness rests on the target: `cast::to_u64` and `cast::to_usize` say why they are exact.
#[test]
fn integer_casts_live_in_the_casts_module() {
    let casts = integer_casts();
    assert!(
        casts.is_empty(),
        "integer `as` casts outside src/cast.rs (use From, try_from or a function of \
         src/cast.rs):\n{}",
        casts.join("\n")
    );
}

/// The cast checker on its own tokens: it sees a cast in code, not in a comment or a string.
#[test]
fn the_cast_checker_sees_casts_in_code_only() {
    let find = |text: &str| {
        tokenize(text)
            .windows(3)
            .filter(|w| {
                matches!(w, [_, Tok::Ident(kw), Tok::Ident(ty)]
                    if kw == "as" && INTEGER_TYPES.contains(&ty.as_str()))
            })
            .count()
    };
    assert_eq!(find("let n = v.len() as u64;"), 1);
    assert_eq!(find("let n = (a + b) as usize; let f = x as f64;"), 1);
    assert_eq!(find("// v.len() as u64\nlet s = \"x as u32\";"), 0);
}

/// Library files whose code (not comments or strings) names `word`.
fn library_files_naming(word: &str) -> Vec<String> {
    library_files()
        .into_iter()
        .filter(|(_, text)| {
            tokenize(text)
                .iter()
                .any(|t| matches!(t, Tok::Ident(w) if w == word))
        })
        .map(|(rel, _)| rel.display().to_string())
        .collect()
}

#[test]
fn no_clap_in_the_library() {
    let files = library_files_naming("clap");
    assert!(files.is_empty(), "clap in library code: {files:?}");
}

#[test]
fn no_indicatif_in_the_library() {
    let files = library_files_naming("indicatif");
    assert!(files.is_empty(), "indicatif in library code: {files:?}");
}

#[test]
fn every_stage_is_a_module_of_the_crate() {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    let toks = tokenize(&lib);
    let declared: BTreeSet<String> = toks
        .windows(2)
        .filter_map(|w| match w {
            [Tok::Ident(k), Tok::Ident(name)] if k == "mod" => Some(name.clone()),
            _ => None,
        })
        .collect();
    for m in FOUNDATION.iter().chain(PIPELINE) {
        assert!(declared.contains(*m), "`{m}` is not declared in src/lib.rs");
    }
    for m in &declared {
        assert!(
            rank(m).is_some(),
            "`{m}` has no place in the pipeline order"
        );
    }
}

/// The checker itself, on snippets: it finds real upward imports in every form and ignores
/// comments, messages, its own module and `pub(crate)`.
#[test]
fn the_checker_sees_imports_and_only_imports() {
    let snippet = r##"
        //! Docs may name [`crate::fhe`] freely.
        use crate::error::{Error, Result};
        use crate::ir::{IntGraph, Op};
        use super::rounding::Rounding;
        pub(crate) fn f() -> Result<()> {
            // crate::tfhe in a comment
            /* and crate::report in /* a nested */ block comment */
            let _m = "see crate::execute for details";
            let _c = '"';
            let _q = '\'';
            let _s = r#"crate::fhe::x in a raw string "with quotes""#;
            Err(Error::Circuit("x".into()))
        }
        #[cfg(test)]
        mod tests {
            use super::*;
            use super::super::super::train::PruningMode;
        }
    "##;
    let path = vec!["lower".to_string(), "fold".to_string()];
    assert_eq!(
        imports(&path, snippet),
        ["error", "ir", "train"].map(String::from).into()
    );
    assert!(violations(Path::new("lower/fold.rs"), snippet).is_empty());

    // Each form of an upward import is caught.
    for (rel, code, later) in [
        ("lower/mod.rs", "use crate::analyze::transfer;", "analyze"),
        ("ir/graph.rs", "use crate::{data::Task, fhe::Plan};", "fhe"),
        (
            "ir/format.rs",
            "use super::super::lower::Rounding;",
            "lower",
        ),
        (
            "data/csv.rs",
            "fn f() { crate::report::render_text(r); }",
            "report",
        ),
        (
            "ir/graph.rs",
            r#"#[serde(with = "crate::tfhe::rle")] struct S;"#,
            "tfhe",
        ),
        ("task.rs", "use crate::data::Dataset;", "data"),
        (
            "execute/mod.rs",
            "mod inner { use super::super::super::fhe::X; }",
            "fhe",
        ),
        (
            "analyze.rs",
            "use crate::analyze::X; use crate::report::Y;",
            "report",
        ),
    ] {
        let v = violations(Path::new(rel), code);
        assert_eq!(v.len(), 1, "{rel}: {code}: {v:?}");
        assert!(v[0].contains(&format!("imports `{later}`")), "{v:?}");
    }
    // A module outside the order is reported.
    assert_eq!(violations(Path::new("server/mod.rs"), "").len(), 1);
    // Library code naming clap is found by the tokenizer; a comment naming it is not.
    let toks = tokenize("// clap\n#[derive(clap::ValueEnum)] enum K {}");
    assert_eq!(
        toks.iter()
            .filter(|t| matches!(t, Tok::Ident(w) if w == "clap"))
            .count(),
        1
    );
}
