//! `${VAR}` and `${VAR:-default}` in the configuration text, from the runtime's environment
//! (`$${` writes a literal `${`). Substitution happens on the text, before YAML parsing, so a
//! variable may stand for any scalar (a number too); the column shifts it causes are recorded
//! so that later errors still point into the file as written.

use aixrun::Env;

/// A problem at a line and column (1-based) of the original text.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TextError {
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) problem: String,
}

/// The text after substitution, with what is needed to map positions back.
#[derive(Debug)]
pub(super) struct Interpolated {
    pub(super) text: String,
    /// Per substitution: line, original column of `${`, its original and new lengths (chars).
    shifts: Vec<Shift>,
}

#[derive(Debug, Clone, Copy)]
struct Shift {
    line: usize,
    column: usize,
    old_len: usize,
    new_len: usize,
}

impl Interpolated {
    /// The original position of `column` on `line` of the substituted text. Substitutions
    /// never add lines (values with line breaks are refused), so only columns move; a position
    /// inside a substituted value maps to its `${`.
    pub(super) fn original(&self, line: usize, column: usize) -> (usize, usize) {
        let mut offset: isize = 0;
        for s in self.shifts.iter().filter(|s| s.line == line) {
            let start = (s.column as isize + offset) as usize;
            if column < start {
                break;
            }
            if column < start + s.new_len {
                return (line, s.column);
            }
            offset += s.new_len as isize - s.old_len as isize;
        }
        (line, (column as isize - offset).max(1) as usize)
    }
}

/// Substitutes every `${...}` of `text` from `env`.
pub(super) fn interpolate(text: &str, env: &Env) -> Result<Interpolated, TextError> {
    let mut out = String::with_capacity(text.len());
    let mut shifts = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let mut rest = line;
        // Columns count characters, as the YAML parser's do.
        let mut column = 1;
        while let Some(at) = rest.find('$') {
            let (before, from) = rest.split_at(at);
            out.push_str(before);
            column += before.chars().count();
            if let Some(after) = from.strip_prefix("$${") {
                out.push_str("${");
                shifts.push(Shift {
                    line: number,
                    column,
                    old_len: 3,
                    new_len: 2,
                });
                column += 3;
                rest = after;
                continue;
            }
            let Some(body) = from.strip_prefix("${") else {
                out.push('$');
                column += 1;
                rest = &from[1..];
                continue;
            };
            let error = |problem: String| TextError {
                line: number,
                column,
                problem,
            };
            let end = body
                .find('}')
                .ok_or_else(|| error("`${` without its closing `}`".into()))?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(error(format!(
                    "`${{{inner}}}` is not a variable reference; expected ${{NAME}} or ${{NAME:-default}}"
                )));
            }
            let value = match (env.get(name), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d,
                (None, None) => {
                    return Err(error(format!(
                        "${{{name}}}: {name} is not set (write ${{{name}:-default}} for a default)"
                    )));
                }
            };
            if value.contains(['\n', '\r']) {
                return Err(error(format!(
                    "${{{name}}}: its value has a line break; only single-line values are substituted"
                )));
            }
            out.push_str(value);
            let old_len = inner.chars().count() + 3;
            shifts.push(Shift {
                line: number,
                column,
                old_len,
                new_len: value.chars().count(),
            });
            column += old_len;
            rest = &body[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(Interpolated { text: out, shifts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_pairs([("HOST", "ollama.internal"), ("N", "7"), ("EMPTY", "")])
    }

    #[test]
    fn substitutes_values_and_defaults() {
        let got = interpolate(
            "a: http://${HOST}:${PORT:-11434}\nb: ${N}\nc: ${EMPTY:-x}\nd: $$5 $${HOST}\n",
            &env(),
        )
        .unwrap();
        assert_eq!(
            got.text,
            "a: http://ollama.internal:11434\nb: 7\nc: x\nd: $$5 ${HOST}\n"
        );
    }

    #[test]
    fn an_unset_variable_is_named_at_its_position() {
        let e = interpolate("x: 1\ny: [a, ${MISSING}]\n", &env()).unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
        assert!(e.problem.contains("MISSING is not set"), "{}", e.problem);
        let e = interpolate("x: ${1BAD}\n", &env()).unwrap_err();
        assert!(
            e.problem.contains("not a variable reference"),
            "{}",
            e.problem
        );
        let e = interpolate("x: ${OPEN\n", &env()).unwrap_err();
        assert!(e.problem.contains("closing"), "{}", e.problem);
        let lines = Env::from_pairs([("ML", "a\nb")]);
        assert!(interpolate("x: ${ML}\n", &lines).is_err());
    }

    #[test]
    fn positions_map_back_to_the_original_columns() {
        let got = interpolate("k: ${HOST} ${N} z\n", &env()).unwrap();
        // "k: ollama.internal 7 z": z is at column 22 after, column 17 before.
        assert_eq!(got.original(1, 22), (1, 17));
        assert_eq!(got.original(1, 8), (1, 4));
        assert_eq!(got.original(1, 2), (1, 2));
        assert_eq!(got.original(2, 5), (2, 5));
    }
}
