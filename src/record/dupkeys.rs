//! Keys a JSON text has more than once in one object. serde_json keeps one
//! value of such a key silently (the last, at the first one's place), so a
//! record with one cannot be re-encoded byte-exactly and may not say what
//! the person who wrote it meant.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// A key found more than once in one JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub key: String,
    /// Where the object is: empty for the top level, else a path such as
    /// `metadata` or `driver_info.list[2]`.
    pub parent: String,
    /// How many times the key appears in that object.
    pub count: usize,
}

impl DuplicateKey {
    /// `status`, or `metadata.owner` for a nested key.
    pub fn path(&self) -> String {
        if self.parent.is_empty() {
            self.key.clone()
        } else {
            format!("{}.{}", self.parent, self.key)
        }
    }
}

impl fmt::Display for DuplicateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the key {:?} appears {} times", self.key, self.count)?;
        if !self.parent.is_empty() {
            write!(f, " in {} (at {})", self.parent, self.path())?;
        }
        Ok(())
    }
}

/// Every key of `json` that appears more than once in one object, in the
/// order of their second appearance. Errors are serde_json's for bad JSON.
pub fn duplicate_keys(json: &str) -> Result<Vec<DuplicateKey>, serde_json::Error> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_str(json);
    Walk {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// serde_json's internal key for numbers under `arbitrary_precision`.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

struct Walk<'a> {
    path: String,
    found: &'a mut Vec<DuplicateKey>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! ignore {
    ($($name:ident: $t:ty),*) => {$(
        fn $name<E: serde::de::Error>(self, _: $t) -> Result<(), E> {
            Ok(())
        }
    )*};
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    ignore!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64,
        visit_i128: i128, visit_u128: u128, visit_str: &str);

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let seed = Walk {
                path: format!("{}[{i}]", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        let first = self.found.len();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_TOKEN && seen.is_empty() {
                // A number (arbitrary_precision): its digits, no object.
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            map.next_value_seed(Walk {
                path,
                found: &mut *self.found,
            })?;
            if seen.contains(&key) {
                // Objects nested in this one may have added theirs after `first`.
                match self.found[first..]
                    .iter_mut()
                    .find(|d| d.key == key && d.parent == self.path)
                {
                    Some(d) => d.count += 1,
                    None => self.found.push(DuplicateKey {
                        key,
                        parent: self.path.clone(),
                        count: 2,
                    }),
                }
            } else {
                seen.insert(key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(json: &str) -> Vec<(String, usize)> {
        duplicate_keys(json)
            .unwrap()
            .into_iter()
            .map(|d| (d.path(), d.count))
            .collect()
    }

    #[test]
    fn no_duplicates_in_a_plain_record() {
        assert!(
            paths(r#"{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}], "n": 1.50}"#).is_empty()
        );
    }

    #[test]
    fn top_level_and_nested_duplicates_are_found_with_their_path() {
        let got = paths(
            r#"{"status": "available", "metadata": {"k": 1, "k": 2, "k": 3}, "l": [0, {"x": 1, "x": 1}], "status": "error"}"#,
        );
        assert_eq!(
            got,
            vec![
                ("metadata.k".to_string(), 3),
                ("l[1].x".to_string(), 2),
                ("status".to_string(), 2)
            ]
        );
    }

    #[test]
    fn escaped_keys_are_compared_decoded() {
        assert_eq!(
            paths(r#"{"a": 1, "\u0061": 2}"#),
            vec![("a".to_string(), 2)]
        );
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(duplicate_keys(r#"{"a": "#).is_err());
        assert!(duplicate_keys(r#"{"a": 1} x"#).is_err());
    }
}
