//! Finding export records in anything an operator pastes.
//!
//! STUB: only export JSON, record JSON and bare base64 for now; the nom
//! parsers for every format in the format doc (section 8) replace this.

use super::codec::{self, CodecError};
use super::{Decoded, Source, SourceFormat, era_of};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PasteError {
    #[error("the input is empty")]
    Empty,
    #[error("no export record found in the input")]
    NoRecord,
    #[error("line {line}: {source}")]
    Codec {
        line: usize,
        #[source]
        source: CodecError,
    },
}

/// Find every record in `text`, in order.
pub fn decode_all(text: &str) -> Result<Vec<Decoded>, PasteError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(PasteError::Empty);
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(trimmed) {
        let inner = map
            .get("backup-record")
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_else(|| map.clone());
        if let Some(url) = inner.get("backup_url").and_then(|v| v.as_str()) {
            let record =
                codec::decode_url(url).map_err(|source| PasteError::Codec { line: 1, source })?;
            let service = inner
                .get("backup_service")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            let era = era_of(&record, service.as_deref());
            return Ok(vec![Decoded {
                backup_service: service,
                source: Source {
                    format: SourceFormat::Json,
                    wrapped: url.contains('\n'),
                    era,
                },
                record,
                url: Some(url.chars().filter(|c| !c.is_whitespace()).collect()),
                wrap: None,
                line: 1,
            }]);
        }
        let era = era_of(&map, None);
        return Ok(vec![Decoded {
            backup_service: None,
            source: Source {
                format: SourceFormat::RecordJson,
                wrapped: false,
                era,
            },
            record: map,
            url: None,
            wrap: None,
            line: 1,
        }]);
    }
    let record =
        codec::decode_url(trimmed).map_err(|source| PasteError::Codec { line: 1, source })?;
    let era = era_of(&record, None);
    Ok(vec![Decoded {
        backup_service: None,
        source: Source {
            format: SourceFormat::Base64,
            wrapped: trimmed.contains('\n'),
            era,
        },
        record,
        url: Some(trimmed.chars().filter(|c| !c.is_whitespace()).collect()),
        wrap: None,
        line: 1,
    }])
}
