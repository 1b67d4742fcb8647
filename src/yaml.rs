//! The one YAML dialect of the project: what `render`, `crd` and the
//! fixtures print. `serde_norway` is a maintained fork of the archived
//! `serde_yaml`, with the same output.

use serde::Serialize;

/// The canonical YAML of an object.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_norway::Error> {
    serde_norway::to_string(value)
}
