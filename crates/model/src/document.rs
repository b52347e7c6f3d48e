//! The one JSON document hangscope writes (`--json`, `--save`) and reads back (`replay`).

use serde::{Deserialize, Serialize};

use crate::{Finding, Snapshot};

/// "MAJOR.MINOR". MINOR grows with additive changes; MAJOR changes break readers.
pub const SCHEMA_VERSION: &str = "1.2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Document {
    pub schema_version: String,
    /// The program and version that wrote the document, e.g. "hangscope 0.1.0".
    #[serde(default)]
    pub generator: String,
    pub snapshot: Snapshot,
    /// Ranked findings, most important first. Empty when nothing looks stuck.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// The sampling window over which the snapshot's activity fields were measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Window {
    /// Number of looks taken, the first included.
    pub looks: u32,
    /// Time from the first look to the last, in milliseconds.
    pub duration_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("not a hangscope snapshot: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("not a hangscope snapshot: no schema_version field")]
    NoVersion,
    #[error(
        "snapshot has schema version {found}, this hangscope reads {expected}.x; \
         use a hangscope release of that major version to read it"
    )]
    MajorMismatch { found: String, expected: String },
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

impl Document {
    pub fn new(generator: impl Into<String>, snapshot: Snapshot, findings: Vec<Finding>) -> Self {
        Document {
            schema_version: SCHEMA_VERSION.to_string(),
            generator: generator.into(),
            snapshot,
            findings,
        }
    }

    /// Reads a document, checking the major version before anything else so a file from an
    /// incompatible release gets a message about versions, not about a missing field.
    pub fn from_json(text: &str) -> Result<Document, DocumentError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let found = value
            .get("schema_version")
            .and_then(|v| v.as_str())
            .ok_or(DocumentError::NoVersion)?;
        if major(found) != major(SCHEMA_VERSION) {
            return Err(DocumentError::MajorMismatch {
                found: found.to_string(),
                expected: major(SCHEMA_VERSION).to_string(),
            });
        }
        Ok(serde_json::from_value(value)?)
    }

    pub fn to_json_pretty(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The JSON Schema of [`Document`], generated from these types and their doc comments; the
/// copy in docs/snapshot-schema.json is checked against it by a test.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Document);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut snap = Snapshot::default();
        snap.process.pid = 42;
        let doc = Document::new("hangscope test", snap, vec![]);
        let back = Document::from_json(&doc.to_json_pretty()).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn accepts_unknown_fields_and_newer_minor() {
        let text = r#"{"schema_version":"1.7","generator":"future","snapshot":
            {"process":{"pid":7,"name":"x","brand_new":true},"also_new":[1,2]},
            "findings":[],"extra":{}}"#;
        let doc = Document::from_json(text).unwrap();
        assert_eq!(doc.snapshot.process.pid, 7);
        assert_eq!(doc.snapshot.process.name, "x");
    }

    #[test]
    fn refuses_other_major() {
        let err = Document::from_json(r#"{"schema_version":"2.0","snapshot":{}}"#).unwrap_err();
        assert!(matches!(err, DocumentError::MajorMismatch { .. }));
        assert!(err.to_string().contains("2.0"), "{err}");
    }

    #[test]
    fn refuses_garbage_without_panic() {
        assert!(matches!(
            Document::from_json("not json"),
            Err(DocumentError::Malformed(_))
        ));
        assert!(matches!(
            Document::from_json("{}"),
            Err(DocumentError::NoVersion)
        ));
    }
}
