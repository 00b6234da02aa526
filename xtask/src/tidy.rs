//! The source tidy rules: every Rust file starts with a `//!` line saying what it is for, and no
//! comment refers to an issue by number (comments describe the design; the history is in the log).

use std::path::{Path, PathBuf};

/// The folders whose Rust files the rules cover, relative to the workspace root.
pub const SOURCE_DIRS: [&str; 4] = ["shared", "functions", "infra", "xtask"];

/// Folders never walked: build output and installed packages (hidden folders are skipped too).
const SKIPPED_DIRS: [&str; 3] = ["target", "build", "node_modules"];

/// Every `.rs` file under the source folders of `root`, relative to it, sorted.
pub fn rust_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        walk(root, Path::new(dir), &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(root.join(dir)).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = dir.join(&*name);
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            if !name.starts_with('.') && !SKIPPED_DIRS.contains(&&*name) {
                walk(root, &path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a source file's first line is a `//!` module doc.
pub fn has_module_doc(source: &str) -> bool {
    source
        .lines()
        .next()
        .is_some_and(|line| line.starts_with("//!"))
}

/// One comment line: its line number (from 1) and its text after the `//` or inside `/* */`.
#[derive(Debug, PartialEq, Eq)]
pub struct Comment {
    pub line: usize,
    pub text: String,
}

/// The comments of a Rust source, line by line: `//` comments (doc comments included) and the lines
/// of `/* */` comments (nested ones too). Strings, raw strings and character literals are skipped,
/// so a `//` inside a string is no comment.
pub fn comments(source: &str) -> Vec<Comment> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if next == Some('/') => {
                let end = (i..chars.len())
                    .find(|&j| chars[j] == '\n')
                    .unwrap_or(chars.len());
                out.push(Comment {
                    line,
                    text: chars[i + 2..end].iter().collect(),
                });
                i = end;
            }
            '/' if next == Some('*') => i = block_comment(&chars, i + 2, &mut line, &mut out),
            '"' => i = string(&chars, i + 1, &mut line),
            '\'' => i = char_or_lifetime(&chars, i),
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if matches!(word.as_str(), "r" | "br" | "cr")
                    && matches!(chars.get(i), Some('#' | '"'))
                {
                    i = raw_string(&chars, i, &mut line);
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Reads a block comment from just after its `/*`; returns the index after its `*/`.
fn block_comment(chars: &[char], mut i: usize, line: &mut usize, out: &mut Vec<Comment>) -> usize {
    let mut depth = 1;
    let mut text = String::new();
    while i < chars.len() {
        match (chars[i], chars.get(i + 1).copied()) {
            ('/', Some('*')) => {
                depth += 1;
                text.push_str("/*");
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    break;
                }
                text.push_str("*/");
            }
            ('\n', _) => {
                out.push(Comment {
                    line: *line,
                    text: std::mem::take(&mut text),
                });
                *line += 1;
                i += 1;
            }
            (c, _) => {
                text.push(c);
                i += 1;
            }
        }
    }
    out.push(Comment { line: *line, text });
    i
}

/// Skips a string from just after its opening quote; returns the index after the closing one.
fn string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if chars.get(i + 1) == Some(&'\n') {
                    *line += 1;
                }
                i += 2;
            }
            '"' => return i + 1,
            '\n' => {
                *line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

/// Skips a raw string from its `#`s or opening quote; returns the index after its end.
fn raw_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
    i += hashes;
    if chars.get(i) != Some(&'"') {
        // `r#ident`, a raw identifier.
        return i;
    }
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '"' if chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes =>
            {
                return i + 1 + hashes;
            }
            '\n' => *line += 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Skips a character literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime's quote.
fn char_or_lifetime(chars: &[char], i: usize) -> usize {
    match (chars.get(i + 1), chars.get(i + 2)) {
        (Some('\\'), _) => (i + 3..chars.len())
            .find(|&j| chars[j] == '\'')
            .map_or(chars.len(), |j| j + 1),
        (Some(_), Some('\'')) => i + 3,
        _ => i + 1,
    }
}

/// Whether a comment refers to an issue by number: the word "issue" (any case, singular or plural)
/// followed by a number, with or without a `#`, or GitHub's `#` and a number after a space or a
/// parenthesis.
pub fn names_an_issue(text: &str) -> bool {
    let lower: Vec<char> = text.to_lowercase().chars().collect();
    let word_start = |i: usize| i == 0 || !lower[i - 1].is_alphanumeric();
    for i in 0..lower.len() {
        if lower[i..].starts_with(&['i', 's', 's', 'u', 'e']) && word_start(i) {
            let mut j = i + 5;
            if lower.get(j) == Some(&'s') {
                j += 1;
            }
            while lower.get(j).is_some_and(|c| c.is_whitespace()) {
                j += 1;
            }
            if lower.get(j) == Some(&'#') {
                j += 1;
            }
            if lower.get(j).is_some_and(char::is_ascii_digit) {
                return true;
            }
        }
        if lower[i] == '#'
            && (i == 0 || lower[i - 1].is_whitespace() || lower[i - 1] == '(')
            && lower.get(i + 1).is_some_and(char::is_ascii_digit)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<(usize, String)> {
        comments(source)
            .into_iter()
            .map(|c| (c.line, c.text))
            .collect()
    }

    #[test]
    fn comments_are_found_outside_strings_and_characters() {
        let source = concat!(
            "//! The module.\n",
            "let url = \"https://example.com\"; // a trailing note\n",
            "let raw = r#\"no // comment \"here\"\"#;\n",
            "let c = '\"'; let d = '/'; let e = '\\''; // after quotes\n",
            "fn f<'a>(x: &'a str) {} /* one\n",
            "   two /* nested */ three */\n",
            "let s = \"a \\\" // still a string\";\n",
            "let b = br\"// bytes\"; let r#type = 1; // last\n",
        );
        assert_eq!(
            texts(source),
            [
                (1, "! The module."),
                (2, " a trailing note"),
                (4, " after quotes"),
                (5, " one"),
                (6, "   two /* nested */ three "),
                (8, " last"),
            ]
            .map(|(line, text)| (line, text.to_owned()))
        );
    }

    #[test]
    fn issue_numbers_are_recognised_and_other_numbers_are_not() {
        for text in [
            " Billing (issue 6): the plan's gates",
            "/ See Issue #7.",
            " fixed in issue #6 and 7",
            " fixed in (#12)",
            "! Retention (issue\t14)",
        ] {
            assert!(names_an_issue(text), "{text}");
        }
        // The plural, spelled out of parts so this file's own text stays singular.
        assert!(names_an_issue(&format!(" {}s 6 and 7", "issue")));
        for text in [
            " the PKCS#8 prefix",
            " tissue 5",
            " an issue with 3 causes",
            " item 3 of 5",
            " issuer 4",
        ] {
            assert!(!names_an_issue(text), "{text}");
        }
    }

    #[test]
    fn the_first_line_must_be_a_module_doc() {
        assert!(has_module_doc("//! What this is.\nfn main() {}\n"));
        assert!(!has_module_doc("#![allow(x)]\n//! What this is.\n"));
        assert!(!has_module_doc("// A plain comment.\n"));
        assert!(!has_module_doc(""));
    }
}
