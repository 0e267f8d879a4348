//! The repository stands alone (issue 13): its documentation and the
//! references to it resolve inside the tree.
//!
//! * No file mentions the out-of-tree directory the protocol notes used to
//!   live in (a `..` path to `shared`).
//! * Every citation of a protocol note, `` `NAME.md` §X[.Y] `` or
//!   `docs/NAME.md §X` (with or without backticks, continued over comment
//!   lines, with chains such as `§4, §5` or `§1–§4`), names a file that
//!   exists in `docs/` and a section number that is a heading of that file.
//! * Every `C pitfall N` (and `C pitfalls N, M–K`) names an item of the one
//!   numbered list in `docs/c-pitfalls.md`, which counts 1, 2, 3, … without
//!   gaps.
//! * Every relative link of a Markdown file (`[text](path)`) points to a
//!   file or directory that exists.
//!
//! The tree is every file under the workspace root except `.git` and build
//! directories (`target/`, and any directory cargo tagged with
//! `CACHEDIR.TAG`, e.g. CI's `ci-target/`) and the fuzz corpus
//! (`fuzz/corpus/`: inputs, not documentation). Files that are not UTF-8 are
//! only searched for the old directory. This file's own examples of broken
//! citations are not checked against the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// This file, relative to the workspace root.
const SELF: &str = "tests/tests/docs_tree.rs";

/// The fuzz targets' inputs (arbitrary bytes, some of them text).
const FUZZ_CORPUS: &str = "fuzz/corpus";

fn repo_root() -> PathBuf {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests.parent().map(Path::to_path_buf).unwrap_or(tests)
}

/// Every file of the tree, as (path relative to the root, contents).
fn tree() -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        if dir.join("CACHEDIR.TAG").exists() {
            return;
        }
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => panic!("cannot list {}: {e}", dir.display()),
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if matches!(name.as_deref(), Some(".git" | "target")) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if path
                    .strip_prefix(root)
                    .is_ok_and(|r| r == Path::new(FUZZ_CORPUS))
                {
                    continue;
                }
                walk(root, &path, out);
            } else if meta.is_file() {
                let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                match fs::read(&path) {
                    Ok(bytes) => out.push((rel, bytes)),
                    Err(e) => panic!("cannot read {}: {e}", path.display()),
                }
            }
        }
    }
    let root = repo_root();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    assert!(
        out.iter().any(|(p, _)| p == Path::new("docs/README.md")),
        "the walk from {} found no docs/README.md",
        root.display()
    );
    out
}

/// The UTF-8 files of the tree, without this file.
fn text_files() -> Vec<(PathBuf, String)> {
    tree()
        .into_iter()
        .filter(|(p, _)| p != Path::new(SELF))
        .filter_map(|(p, b)| String::from_utf8(b).ok().map(|s| (p, s)))
        .collect()
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Skips blanks; after a line break also the marker of a continued comment
/// (`//!`, `///`, `//`, `#`), so that a citation may wrap in code comments
/// and shell scripts as in Markdown.
fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r') {
            i += 1;
        }
        if i < b.len() && b[i] == b'\n' {
            i += 1;
            while i < b.len() && matches!(b[i], b' ' | b'\t') {
                i += 1;
            }
            for marker in [&b"//!"[..], b"///", b"//", b"#"] {
                if b[i..].starts_with(marker) {
                    i += marker.len();
                    break;
                }
            }
            continue;
        }
        return i;
    }
}

/// A section number at `i` (`5`, `5.2`, `1.1a`), and where it ends.
fn section_at(b: &[u8], i: usize) -> Option<(String, usize)> {
    let mut j = i;
    loop {
        let start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == start {
            return None;
        }
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j += 1;
            continue;
        }
        break;
    }
    if j < b.len()
        && b[j].is_ascii_lowercase()
        && !(j + 1 < b.len() && b[j + 1].is_ascii_alphabetic())
    {
        j += 1;
    }
    Some((String::from_utf8_lossy(&b[i..j]).into_owned(), j))
}

const SECTION_SIGN: &[u8] = "§".as_bytes();

/// After a section number ending at `i`: the position of the next `§` of
/// the same chain (`, §`, `–§`, `-§`, `/§`, ` and §`, `, and §`), if any.
fn chain_next(b: &[u8], i: usize) -> Option<usize> {
    for sep in ["–", "-", "/"] {
        if b[i..].starts_with(sep.as_bytes()) && b[i + sep.len()..].starts_with(SECTION_SIGN) {
            return Some(i + sep.len());
        }
    }
    let mut j = i;
    if j < b.len() && b[j] == b',' {
        j += 1;
    }
    j = skip_blanks(b, j);
    if b[j..].starts_with(b"and ") {
        j = skip_blanks(b, j + 4);
    }
    (j > i && b[j..].starts_with(SECTION_SIGN)).then_some(j)
}

/// A citation of a protocol note: its file name (without `.md`) and the
/// sections cited.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Citation {
    line: usize,
    name: String,
    sections: Vec<String>,
}

/// Every `NAME.md §X` in `text` whose `NAME.md` is a bare or backticked
/// name, or a `docs/` path (other paths, e.g. `packaging/README.md`, are
/// not protocol notes).
fn citations(text: &str) -> Vec<Citation> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find(".md") {
        let dot = from + pos;
        from = dot + 3;
        let mut start = dot;
        while start > 0
            && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'_' | b'-'))
        {
            start -= 1;
        }
        if start == dot {
            continue;
        }
        let name = &text[start..dot];
        let mut before = start;
        if before >= 5 && &b[before - 5..before] == b"docs/" {
            before -= 5;
        }
        if before > 0 && matches!(b[before - 1], b'/' | b'.') {
            continue; // another directory's file, or an extension
        }
        let mut i = dot + 3;
        if i < b.len() && b[i].is_ascii_alphanumeric() {
            continue; // `.mdx` and the like
        }
        if i < b.len() && b[i] == b'`' {
            i += 1;
        }
        i = skip_blanks(b, i);
        if !b[i..].starts_with(SECTION_SIGN) {
            continue;
        }
        let mut sections = Vec::new();
        let mut at = i;
        while let Some((sec, end)) = section_at(b, at + SECTION_SIGN.len()) {
            sections.push(sec);
            match chain_next(b, end) {
                Some(next) => at = next,
                None => break,
            }
        }
        if sections.is_empty() {
            continue;
        }
        out.push(Citation {
            line: text[..dot].matches('\n').count() + 1,
            name: name.to_string(),
            sections,
        });
    }
    out
}

/// The section numbers of the headings of a Markdown file (`## 5. …`,
/// `### 5.2 …`, `### 1.1a …`).
fn headings(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('#')?.trim_start_matches('#');
            let rest = rest.trim_start();
            let (sec, end) = section_at(rest.as_bytes(), 0)?;
            let after = rest[end..].chars().next();
            matches!(after, None | Some(' ' | '.')).then_some(sec)
        })
        .collect()
}

/// The numbers cited as `C pitfall N` / `C pitfalls N, M–K and L`, with
/// the line of each citation. Parenthesised remarks after a number (README:
/// `C pitfalls: 2 (1), 88 (2, 3)`) are skipped.
fn pitfall_citations(text: &str) -> Vec<(usize, u32)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find("C pitfall") {
        let at = from + pos;
        from = at + 9;
        let line = text[..at].matches('\n').count() + 1;
        let mut i = at + 9;
        if i < b.len() && b[i] == b's' {
            i += 1;
        }
        if i < b.len() && b[i] == b':' {
            i += 1;
        }
        loop {
            i = skip_blanks(b, i);
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let Ok(first) = text[start..i].parse::<u32>() else {
                break;
            };
            let mut last = first;
            if b[i..].starts_with("–".as_bytes()) {
                let s = i + "–".len();
                let mut e = s;
                while e < b.len() && b[e].is_ascii_digit() {
                    e += 1;
                }
                if let Ok(n) = text[s..e].parse::<u32>() {
                    last = n;
                    i = e;
                }
            }
            out.extend((first..=last.max(first)).map(|n| (line, n)));
            // A remark in parentheses belongs to the number before it.
            let j = skip_blanks(b, i);
            if j < b.len() && b[j] == b'(' {
                match text[j..].find(')') {
                    Some(close) => i = j + close + 1,
                    None => break,
                }
            }
            if i < b.len() && b[i] == b',' {
                i += 1;
                continue;
            }
            let j = skip_blanks(b, i);
            if b[j..].starts_with(b"and ") {
                i = j + 4;
                continue;
            }
            break;
        }
    }
    out
}

/// The numbers of the top-level numbered items of `docs/c-pitfalls.md`.
fn pitfall_numbers(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| {
            let digits: String = l.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() || !l[digits.len()..].starts_with(". ") {
                return None;
            }
            digits.parse().ok()
        })
        .collect()
}

/// The relative link targets of a Markdown text (`[text](target)`), with
/// their lines; web links and anchors are left out, `#anchor` parts cut.
fn relative_links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find("](") {
        let open = from + pos + 2;
        from = open;
        let Some(len) = text[open..].find(')') else {
            break;
        };
        let target = text[open..open + len].trim();
        let target = target.split('#').next().unwrap_or("");
        if target.is_empty()
            || target.contains("://")
            || target.starts_with("mailto:")
            || target.contains(char::is_whitespace)
        {
            continue;
        }
        out.push((text[..open].matches('\n').count() + 1, target.to_string()));
    }
    out
}

fn docs() -> BTreeMap<String, String> {
    let dir = repo_root().join("docs");
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match fs::read_to_string(&path) {
                Ok(text) => {
                    out.insert(name, text);
                }
                Err(e) => panic!("cannot read {}: {e}", path.display()),
            }
        }
    }
    out
}

/// The problems of `citations` (found in `file`) against the docs.
fn citation_problems(
    file: &Path,
    found: &[Citation],
    docs: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for c in found {
        match docs.get(&c.name) {
            None => problems.push(format!(
                "{}:{}: cites {}.md, which is not in docs/",
                file.display(),
                c.line,
                c.name
            )),
            Some(sections) => {
                for s in &c.sections {
                    if !sections.contains(s) {
                        problems.push(format!(
                            "{}:{}: cites docs/{}.md §{s}, which has no such heading",
                            file.display(),
                            c.line,
                            c.name
                        ));
                    }
                }
            }
        }
    }
    problems
}

fn report(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} {what}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

#[test]
fn no_file_mentions_the_old_shared_directory() {
    let needle = [&b".."[..], b"/shared"].concat();
    let problems: Vec<String> = tree()
        .iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_slice()))
        .map(|(path, bytes)| {
            let line = String::from_utf8_lossy(bytes)
                .lines()
                .position(|l| {
                    l.as_bytes()
                        .windows(needle.len())
                        .any(|w| w == needle.as_slice())
                })
                .map_or(0, |n| n + 1);
            format!("{}:{line}", path.display())
        })
        .collect();
    report(
        "files mention the old out-of-tree notes (cite docs/ or ARCHITECTURE.md instead)",
        &problems,
    );
}

#[test]
fn every_citation_names_a_docs_file_and_one_of_its_sections() {
    let docs: BTreeMap<String, BTreeSet<String>> = docs()
        .into_iter()
        .map(|(name, text)| (name, headings(&text)))
        .collect();
    let mut problems = Vec::new();
    let mut count = 0;
    for (path, text) in text_files() {
        let found = citations(&text);
        count += found.len();
        problems.extend(citation_problems(&path, &found, &docs));
    }
    assert!(
        count > 100,
        "only {count} citations found: is the parser broken?"
    );
    report("citations of docs/ do not resolve", &problems);
}

#[test]
fn every_cited_c_pitfall_exists_and_the_list_is_numbered_once() {
    let list = docs()
        .remove("c-pitfalls")
        .unwrap_or_else(|| panic!("docs/c-pitfalls.md is missing"));
    let numbers = pitfall_numbers(&list);
    let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
    assert_eq!(
        numbers, expected,
        "docs/c-pitfalls.md must number its items 1, 2, 3, … once each"
    );
    let known: BTreeSet<u32> = numbers.into_iter().collect();
    let mut problems = Vec::new();
    for (path, text) in text_files() {
        for (line, n) in pitfall_citations(&text) {
            if !known.contains(&n) {
                problems.push(format!(
                    "{}:{line}: C pitfall {n} is not in docs/c-pitfalls.md",
                    path.display()
                ));
            }
        }
    }
    report("C pitfall citations do not resolve", &problems);
}

#[test]
fn relative_markdown_links_point_to_existing_files() {
    let root = repo_root();
    let mut problems = Vec::new();
    for (path, text) in text_files() {
        if path.extension() != Some(OsStr::new("md")) {
            continue;
        }
        let dir = root
            .join(&path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (line, target) in relative_links(&text) {
            let resolved = if let Some(abs) = target.strip_prefix('/') {
                root.join(abs)
            } else {
                dir.join(&target)
            };
            if !resolved.exists() {
                problems.push(format!("{}:{line}: link to {target}", path.display()));
            }
        }
    }
    report("Markdown links point to nothing", &problems);
}

// ---------------------------------------------------------------------------
// The parsers themselves (examples not checked against the tree)
// ---------------------------------------------------------------------------

#[test]
fn citations_are_found_in_every_form() {
    let text = "a (`docs/mconsole.md` §5.6 item 4)\n\
                //! see `vector.md` §4, §5 and §9; `kernel7.md`\n\
                //! §1.5) and docs/cow.md §1–§4/§7\n\
                # shell: (`docs/testing.md` §11)\n\
                `helpers.md` §1.1a, packaging/README.md §2, notes.md, x.md §";
    let got: Vec<(String, Vec<String>)> = citations(text)
        .into_iter()
        .map(|c| (c.name, c.sections))
        .collect();
    let want = |n: &str, s: &[&str]| (n.to_string(), s.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        got,
        vec![
            want("mconsole", &["5.6"]),
            want("vector", &["4", "5", "9"]),
            want("kernel7", &["1.5"]),
            want("cow", &["1", "4", "7"]),
            want("testing", &["11"]),
            want("helpers", &["1.1a"]),
        ]
    );
}

#[test]
fn a_missing_file_or_section_is_reported() {
    let docs: BTreeMap<String, BTreeSet<String>> = [(
        "switch".to_string(),
        headings("# t\n## 4. Control\n### 4.4 Bad\n## 10. Pitfalls\n"),
    )]
    .into_iter()
    .collect();
    let found = citations("`switch.md` §4.4, §4.5; `docs/nosuch.md` §1; switch.md §10");
    let problems = citation_problems(Path::new("f.rs"), &found, &docs);
    assert_eq!(
        problems,
        vec![
            "f.rs:1: cites docs/switch.md §4.5, which has no such heading".to_string(),
            "f.rs:1: cites nosuch.md, which is not in docs/".to_string(),
        ]
    );
}

#[test]
fn pitfall_citations_and_numbers_are_read() {
    let text = "C pitfall 9; (C pitfalls 11, 22.)\nC pitfalls: 2 (1), 88 (2,\n3), 82 (4). \
                C pitfalls 47–49 and 5; C pitfall\n// 37";
    let got: Vec<u32> = pitfall_citations(text)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(got, vec![9, 11, 22, 2, 88, 82, 47, 48, 49, 5, 37]);
    assert_eq!(
        pitfall_numbers("x\n1. a\n2. b\n   3. not top level\n10. c\n"),
        vec![1, 2, 10]
    );
}

#[test]
fn headings_and_links_are_read() {
    let h = headings("# Title\n## 1. A\n### 1.1a B\n## Sources\n#### 2.10 C\n## 3\n");
    let want: BTreeSet<String> = ["1", "1.1a", "2.10", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(h, want);
    let links = relative_links(
        "[a](../ARCHITECTURE.md) [b](https://x.org/y) [c](#top) [d](c-pitfalls.md#n)\n[e](docs/)",
    );
    assert_eq!(
        links,
        vec![
            (1, "../ARCHITECTURE.md".to_string()),
            (1, "c-pitfalls.md".to_string()),
            (2, "docs/".to_string()),
        ]
    );
}
