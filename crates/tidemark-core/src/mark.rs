//! The high-water mark, as a refusal reports it.
//!
//! Each domain keeps its own typed state; a [`Mark`] is the part of it a
//! client needs to see when it is refused (a CometBFT height/round/step,
//! a Tezos level/round, a channel's commitment numbers): an ordered list of
//! named unsigned numbers, printable and machine readable.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A high-water mark: named numbers in a fixed, domain-defined order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark(Vec<(String, u64)>);

impl Mark {
    /// An empty mark: the object has never been signed for.
    pub fn none() -> Self {
        Mark(Vec::new())
    }

    /// Appends a named number.
    pub fn with(mut self, name: &str, value: u64) -> Self {
        self.0.push((name.to_owned(), value));
        self
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The named numbers in order.
    pub fn fields(&self) -> &[(String, u64)] {
        &self.0
    }

    /// True when the object has no mark yet.
    pub fn is_none(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_prints_its_fields_in_order() {
        let m = Mark::none()
            .with("height", 7)
            .with("round", 1)
            .with("step", 2);
        assert_eq!(m.to_string(), "height=7 round=1 step=2");
        assert_eq!(m.get("round"), Some(1));
        assert_eq!(Mark::none().to_string(), "none");
    }
}
