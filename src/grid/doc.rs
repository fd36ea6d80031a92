//! Reading a spanned TOML document: typed values, known keys, and positions for one-line errors.

use crate::error::InputError;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeArray, DeString, DeTable, DeValue};
use toml::Spanned;

/// A value of the document with its byte span.
pub(super) type Value<'i> = Spanned<DeValue<'i>>;
/// A key of the document with its byte span.
pub(super) type Key<'i> = Spanned<DeString<'i>>;

/// A problem found in the grid file: what, and where (a byte span) when known.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Issue {
    pub span: Option<Range<usize>>,
    pub message: String,
}

impl Issue {
    pub fn at(span: Range<usize>, message: impl Into<String>) -> Issue {
        Issue {
            span: Some(span),
            message: message.into(),
        }
    }

    pub fn general(message: impl Into<String>) -> Issue {
        Issue {
            span: None,
            message: message.into(),
        }
    }

    /// `{path}:{line}:{col}: {message}` (or `{path}: {message}`), always one line.
    pub fn into_error(self, path: &Path, text: &str) -> InputError {
        let message = self.message.replace(['\n', '\r'], " ");
        match self.span {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                InputError::new(format!("{}:{line}:{col}: {message}", path.display()))
            }
            None => InputError::new(format!("{}: {message}", path.display())),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// A TOML syntax error as an issue: its one-line message at its span.
pub(super) fn syntax_issue(err: &toml::de::Error) -> Issue {
    let message = format!("invalid TOML: {}", err.message());
    match err.span() {
        Some(span) => Issue::at(span, message),
        None => Issue::general(message),
    }
}

/// The entries of a table in the order they appear in the file.
pub(super) fn entries_in_file_order<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(&'a Key<'i>, &'a Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// Fails on the first key (in file order) of `table` that is not in `allowed`.
pub(super) fn reject_unknown_keys(
    table: &DeTable<'_>,
    section: &str,
    allowed: &[&str],
) -> Result<(), Issue> {
    for (key, _) in entries_in_file_order(table) {
        let name = key.get_ref().as_ref();
        if !allowed.contains(&name) {
            return Err(unknown_key(key, name, section, allowed));
        }
    }
    Ok(())
}

/// Key `name` (spelt `key` in the file) is not one of `allowed` in `section`.
pub(super) fn unknown_key(key: &Key<'_>, name: &str, section: &str, allowed: &[&str]) -> Issue {
    let listed: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
    Issue::at(
        key.span(),
        format!(
            "unknown key `{name}` in {section}{}; valid keys: {}",
            did_you_mean(name, allowed, |k| format!("`{k}`")),
            listed.join(", ")
        ),
    )
}

/// `"; did you mean X?"` for the closest candidate within a small edit distance, else `""`.
pub(super) fn did_you_mean(
    word: &str,
    candidates: &[&str],
    show: impl Fn(&str) -> String,
) -> String {
    let best = candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .min_by_key(|(distance, _)| *distance);
    match best {
        Some((distance, candidate)) if distance <= (candidate.len() / 3).max(2) => {
            format!(" (did you mean {}?)", show(candidate))
        }
        _ => String::new(),
    }
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// How a value is shown in messages: its type, and its text when short.
fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        other => other.type_str().to_string(),
    }
}

pub(super) fn expect_table<'a, 'i>(
    key: &Key<'i>,
    value: &'a Value<'i>,
) -> Result<&'a DeTable<'i>, Issue> {
    value.get_ref().as_table().ok_or_else(|| {
        Issue::at(
            key.span(),
            format!(
                "`{}` must be a table (a [section]), not {}",
                key.get_ref(),
                describe(value.get_ref())
            ),
        )
    })
}

pub(super) fn expect_array<'a, 'i>(
    name: &str,
    value: &'a Value<'i>,
) -> Result<&'a DeArray<'i>, Issue> {
    value.get_ref().as_array().ok_or_else(|| {
        Issue::at(
            value.span(),
            format!(
                "`{name}` must be an array of values, not {}",
                describe(value.get_ref())
            ),
        )
    })
}

pub(super) fn expect_str<'a>(name: &str, value: &'a Value<'_>) -> Result<&'a str, Issue> {
    value.get_ref().as_str().ok_or_else(|| {
        Issue::at(
            value.span(),
            format!(
                "`{name}` must be a string, not {}",
                describe(value.get_ref())
            ),
        )
    })
}

pub(super) fn expect_bool(name: &str, value: &Value<'_>) -> Result<bool, Issue> {
    match value.get_ref() {
        DeValue::Boolean(b) => Ok(*b),
        other => Err(Issue::at(
            value.span(),
            format!("`{name}` must be true or false, not {}", describe(other)),
        )),
    }
}

pub(super) fn expect_int(name: &str, value: &Value<'_>) -> Result<i64, Issue> {
    match value.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| {
            Issue::at(
                value.span(),
                format!("`{name}` = {i} is out of the integer range"),
            )
        }),
        other => Err(Issue::at(
            value.span(),
            format!("`{name}` must be an integer, not {}", describe(other)),
        )),
    }
}

pub(super) fn expect_float(name: &str, value: &Value<'_>) -> Result<f64, Issue> {
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|i| i as f64),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        other => {
            return Err(Issue::at(
                value.span(),
                format!("`{name}` must be a number, not {}", describe(other)),
            ))
        }
    };
    parsed.ok_or_else(|| Issue::at(value.span(), format!("`{name}` is not a valid number")))
}

/// An integer in `min..=max` (with `min >= 0`), as `u64`.
pub(super) fn expect_count(
    name: &str,
    value: &Value<'_>,
    min: i64,
    max: i64,
) -> Result<u64, Issue> {
    let number = expect_int(name, value)?;
    if number < min || number > max {
        let range = if max == i64::MAX {
            format!("at least {min}")
        } else {
            format!("between {min} and {max}")
        };
        return Err(Issue::at(
            value.span(),
            format!("`{name}` must be {range}, not {number}"),
        ));
    }
    u64::try_from(number)
        .map_err(|_| Issue::at(value.span(), format!("`{name}` must be at least 0")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_value(text: &str) -> (Key<'_>, Value<'_>) {
        let doc = DeTable::parse(text).expect("valid toml").into_inner();
        doc.into_iter().next().expect("one entry")
    }

    #[test]
    fn line_col_counts_lines_and_characters() {
        let text = "ab\nçd = 1\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 5), (2, 2)); // after the two-byte ç
        assert_eq!(line_col(text, 4), (2, 1)); // inside ç: backs up to its start
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn edit_distance_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            did_you_mean("lerning_rate", &["dropout", "learning_rate"], |k| k
                .to_string()),
            " (did you mean learning_rate?)"
        );
        assert_eq!(did_you_mean("zzz", &["dropout"], |k| k.to_string()), "");
    }

    #[test]
    fn integers_are_accepted_as_floats_but_not_the_reverse() {
        let (_, v) = first_value("x = 3");
        assert_eq!(expect_float("x", &v), Ok(3.0));
        let (_, v) = first_value("x = 0x10");
        assert_eq!(expect_int("x", &v), Ok(16));
        let (_, v) = first_value("x = 1_000");
        assert_eq!(expect_int("x", &v), Ok(1000));
        let (_, v) = first_value("x = 2.5");
        let err = expect_int("x", &v).unwrap_err();
        assert!(err.message.contains("integer"), "{}", err.message);
        assert_eq!(err.span, Some(4..7));
        let (_, v) = first_value("x = 99999999999999999999");
        assert!(expect_int("x", &v).unwrap_err().message.contains("range"));
    }

    #[test]
    fn counts_check_their_range() {
        let (_, v) = first_value("x = -1");
        assert!(expect_count("x", &v, 0, i64::MAX)
            .unwrap_err()
            .message
            .contains("at least 0"));
        let (_, v) = first_value("x = 7");
        assert_eq!(expect_count("x", &v, 0, 7), Ok(7));
        assert!(expect_count("x", &v, 0, 6)
            .unwrap_err()
            .message
            .contains("between 0 and 6"));
    }

    #[test]
    fn entries_come_in_file_order() {
        let doc = DeTable::parse("b = 1\na = 2\nc = 3")
            .expect("valid")
            .into_inner();
        let names: Vec<&str> = entries_in_file_order(&doc)
            .iter()
            .map(|(k, _)| k.get_ref().as_ref())
            .collect();
        assert_eq!(names, ["b", "a", "c"]);
    }

    #[test]
    fn issues_render_as_one_line_with_position() {
        let err = Issue::at(4..5, "bad\nthing").into_error(Path::new("g.toml"), "a\nbc = 1");
        assert_eq!(err.to_string(), "g.toml:2:3: bad thing");
        let err = Issue::general("missing").into_error(Path::new("g.toml"), "");
        assert_eq!(err.to_string(), "g.toml: missing");
    }
}
