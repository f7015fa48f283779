//! Where a value sits in the YAML text, for errors found after parsing (an unknown reference,
//! a cycle). serde_yaml_ng keeps no spans, but it stamps an error raised while a node is being
//! deserialized with that node's line and column: so the text is parsed once more, walking
//! only the path asked for, and failing on purpose at the node.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    /// A mapping's key.
    Key(String),
    /// A sequence's item.
    Index(usize),
}

/// A path such as `agents[1].model`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Path(pub Vec<Seg>);

impl Path {
    /// `self` with a key appended.
    pub(super) fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_owned()));
        p
    }

    /// `self` with an index appended.
    pub(super) fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

const HERE: &str = "aixrun-locate-here";

/// The line and column (1-based) of the node at `path` in `text`, or of the deepest part of
/// the path that exists.
pub(super) fn locate(text: &str, path: &Path) -> Option<(usize, usize)> {
    for len in (0..=path.0.len()).rev() {
        let probe = Probe(&path.0[..len]);
        let de = serde_yaml_ng::Deserializer::from_str(text);
        if let Err(e) = probe.deserialize(de)
            && e.to_string().contains(HERE)
        {
            return e.location().map(|l| (l.line(), l.column()));
        }
    }
    None
}

struct Probe<'a>(&'a [Seg]);

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        while let Some(key) = map.next_key::<serde_yaml_ng::Value>()? {
            if key.as_str() == Some(want.as_str()) {
                return map.next_value_seed(Probe(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        let mut i = 0;
        while i < *want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            i += 1;
        }
        seq.next_element_seed(Probe(rest)).map(|_| ())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
}

impl Probe<'_> {
    /// Fails at the current node only when the whole path has been walked.
    fn here<E: de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(HERE))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segs: &[Seg]) -> Path {
        Path(segs.to_vec())
    }

    #[test]
    fn finds_block_and_flow_nodes() {
        let text = "agents:\n  - name: a\n    model: m1\n  - name: b\n    depends_on: [a, zz]\n";
        let k = |s: &str| Seg::Key(s.into());
        assert_eq!(
            locate(text, &path(&[k("agents"), Seg::Index(1), k("name")])),
            Some((4, 11))
        );
        assert_eq!(
            locate(text, &path(&[k("agents"), Seg::Index(0), k("model")])),
            Some((3, 12))
        );
        assert_eq!(
            locate(
                text,
                &path(&[k("agents"), Seg::Index(1), k("depends_on"), Seg::Index(1)])
            ),
            Some((5, 21))
        );
        // A path that goes further than the document: the deepest node that exists.
        assert_eq!(
            locate(text, &path(&[k("agents"), Seg::Index(1), k("nope")])),
            Some((4, 5))
        );
        assert_eq!(
            path(&[k("agents"), Seg::Index(1), k("name")]).to_string(),
            "agents[1].name"
        );
    }
}
