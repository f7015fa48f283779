//! Literal `sm://` values in the configuration file (`api_key: sm://openai-key`, also what a
//! `${VAR:-sm://...}` default leaves), resolved from Secret Manager at start-up by aixrun's
//! resolver, as `sm://` environment variables are: all at once, before the port opens. A
//! malformed reference is a configuration error at its line (exit 2); a secret that can't be
//! read stops start-up with one line naming the file and the key (exit 1), never a value.

use aixrun::gcp::secrets::{SecretRef, SecretValue};
use serde_yaml_ng::Value;

use super::locate::{Path, Seg};

/// A reference found: where, as written, parsed.
pub(super) type Found = (Path, String, SecretRef);

/// Whether YAML `text` may hold an `sm://` value: written out, or hidden in a double-quoted
/// scalar's escapes (`"sm\x3a//..."`).
pub(super) fn may_hold_references(text: &str) -> bool {
    text.contains("sm://") || text.contains('\\')
}

/// Every string scalar of `doc` that is an `sm://` reference, with its path; a malformed one
/// is its path and the problem.
pub(super) fn references(doc: &Value) -> Result<Vec<Found>, (Path, String)> {
    let mut found = Vec::new();
    walk(doc, &Path::default(), &mut found)?;
    Ok(found)
}

fn walk(value: &Value, at: &Path, found: &mut Vec<Found>) -> Result<(), (Path, String)> {
    match value {
        Value::String(s) => match SecretRef::parse(s.trim()) {
            None => {}
            Some(Ok(r)) => found.push((at.clone(), s.trim().to_owned(), r)),
            Some(Err(problem)) => {
                return Err((
                    at.clone(),
                    format!(
                        "{s:?}: {problem}; expected sm://SECRET, sm://SECRET#VERSION or sm://projects/P/secrets/S/versions/V"
                    ),
                ));
            }
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &at.index(i), found)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                let key = match k {
                    Value::String(k) => k.clone(),
                    other => serde_yaml_ng::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                walk(v, &at.key(&key), found)?;
            }
        }
        Value::Tagged(tagged) => walk(&tagged.value, at, found)?,
        _ => {}
    }
    Ok(())
}

/// `doc` with the string at each path replaced by its secret.
pub(super) fn substitute(doc: &mut Value, values: &[(Path, SecretValue)]) {
    for (path, value) in values {
        if let Some(slot) = find_mut(doc, path) {
            *slot = Value::String(value.expose().to_owned());
        }
    }
}

fn find_mut<'a>(mut node: &'a mut Value, path: &Path) -> Option<&'a mut Value> {
    for seg in &path.0 {
        if let Value::Tagged(tagged) = node {
            node = &mut tagged.value;
        }
        node = match (seg, node) {
            (Seg::Index(i), Value::Sequence(items)) => items.get_mut(*i)?,
            (Seg::Key(k), Value::Mapping(map)) => map.get_mut(k.as_str())?,
            _ => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_with_their_paths_and_replaced() {
        let mut doc: Value = serde_yaml_ng::from_str(
            "model_services:\n  - name: m\n    config: {api_key: sm://openai-key, address: http://x}\n\
             mcp_servers:\n  - {name: s, auth: {type: bearer, token: 'sm://projects/p/secrets/t/versions/2'}}\n",
        )
        .unwrap();
        let refs = references(&doc).unwrap();
        let paths: Vec<String> = refs.iter().map(|(p, _, _)| p.to_string()).collect();
        assert_eq!(
            paths,
            [
                "model_services[0].config.api_key",
                "mcp_servers[0].auth.token"
            ]
        );
        assert_eq!(refs[1].2.project.as_deref(), Some("p"));
        let values: Vec<(Path, SecretValue)> = refs
            .iter()
            .map(|(p, _, _)| (p.clone(), SecretValue::from(format!("value of {p}"))))
            .collect();
        substitute(&mut doc, &values);
        assert_eq!(
            doc["model_services"][0]["config"]["api_key"],
            Value::String("value of model_services[0].config.api_key".into())
        );
        assert_eq!(
            doc["mcp_servers"][0]["auth"]["token"],
            Value::String("value of mcp_servers[0].auth.token".into())
        );
        let bad: Value = serde_yaml_ng::from_str("a: [sm://bad name]").unwrap();
        let (path, problem) = references(&bad).unwrap_err();
        assert_eq!(path.to_string(), "a[0]");
        assert!(problem.contains("must be 1 to 255"), "{problem}");
    }

    #[test]
    fn only_text_that_may_hold_a_reference_is_searched() {
        assert!(!may_hold_references(super::super::BUNDLED));
        assert!(may_hold_references("key: sm://k"));
        // An escaped reference is still one: the document is searched.
        let text = "key: \"sm\\x3a//k\"";
        assert!(may_hold_references(text));
        let doc: Value = serde_yaml_ng::from_str(text).unwrap();
        assert_eq!(references(&doc).unwrap().len(), 1);
    }
}
