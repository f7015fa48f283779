//! Content blocks: MCP's JSON shape ([`Content`], what tools return and clients read) and
//! `mcp.Content`, in both directions.
//!
//! The seed's `mcp.Content` carries binary data as bytes and describes it in `metadata`
//! (`mimeType`, `uri`); the added `mime_type` and `uri` fields say the same for readers of the
//! new proto. Both are written, and a reader takes the field first, the metadata second.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::mcp;

/// The content types a result may hold over gRPC (`Capabilities.supported_content_types`).
pub const CONTENT_TYPES: [&str; 5] = ["text", "image", "audio", "resource", "resource_link"];

/// One content block of a result, in MCP's wire shape (`{"type": "text", "text": ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, base64-encoded.
    Image {
        /// Base64 data.
        data: String,
        /// MIME type such as `image/png`.
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// Audio, base64-encoded.
    Audio {
        /// Base64 data.
        data: String,
        /// MIME type such as `audio/wav`.
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// An embedded resource (`{uri, mimeType?, text | blob}`).
    Resource {
        /// The resource object.
        resource: Json,
    },
    /// A link to a resource (`{uri, name, ...}`).
    ResourceLink {
        /// The whole block as the server sent it, but its `type`.
        #[serde(flatten)]
        link: Map<String, Json>,
    },
}

impl Content {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }
}

/// A block as `mcp.Content`. Base64 that does not decode (tools hand out valid base64) is sent
/// as its own bytes rather than lost. A resource link's string fields (`uri`, `name`, `title`,
/// `description`, `mimeType`) travel in `metadata`; its other fields have no place in the seed's
/// message.
pub fn to_pb_content(content: Content) -> mcp::Content {
    let binary = |kind: &str, data: String, mime_type: String| mcp::Content {
        r#type: kind.to_owned(),
        data: STANDARD
            .decode(data.as_bytes())
            .unwrap_or_else(|_| data.into_bytes()),
        metadata: HashMap::from([("mimeType".to_owned(), mime_type.clone())]),
        mime_type,
        ..Default::default()
    };
    match content {
        Content::Text { text } => mcp::Content {
            r#type: "text".into(),
            text,
            ..Default::default()
        },
        Content::Image { data, mime_type } => binary("image", data, mime_type),
        Content::Audio { data, mime_type } => binary("audio", data, mime_type),
        Content::Resource { resource } => {
            let field = |k: &str| string_field(resource.get(k));
            let (uri, mime_type) = (field("uri"), field("mimeType"));
            let blob = resource.get("blob").and_then(Json::as_str);
            mcp::Content {
                r#type: "resource".into(),
                text: field("text"),
                data: blob
                    .and_then(|b| STANDARD.decode(b).ok())
                    .unwrap_or_default(),
                metadata: HashMap::from([
                    ("uri".to_owned(), uri.clone()),
                    ("mimeType".to_owned(), mime_type.clone()),
                ]),
                mime_type,
                uri,
            }
        }
        Content::ResourceLink { link } => mcp::Content {
            r#type: "resource_link".into(),
            uri: string_field(link.get("uri")),
            mime_type: string_field(link.get("mimeType")),
            metadata: link
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
            ..Default::default()
        },
    }
}

/// `mcp.Content` as a block. A type this side does not know becomes its text: what a model can
/// read of it.
pub fn from_pb_content(content: mcp::Content) -> Content {
    let mime_type = if content.mime_type.is_empty() {
        content
            .metadata
            .get("mimeType")
            .cloned()
            .unwrap_or_default()
    } else {
        content.mime_type.clone()
    };
    let uri = if content.uri.is_empty() {
        content.metadata.get("uri").cloned().unwrap_or_default()
    } else {
        content.uri.clone()
    };
    match content.r#type.as_str() {
        "image" => Content::Image {
            data: STANDARD.encode(&content.data),
            mime_type,
        },
        "audio" => Content::Audio {
            data: STANDARD.encode(&content.data),
            mime_type,
        },
        "resource" => {
            let mut resource = json!({"uri": uri});
            if !mime_type.is_empty() {
                resource["mimeType"] = mime_type.into();
            }
            if content.data.is_empty() {
                resource["text"] = content.text.into();
            } else {
                resource["blob"] = STANDARD.encode(&content.data).into();
            }
            Content::Resource { resource }
        }
        "resource_link" => {
            let mut link: Map<String, Json> = content
                .metadata
                .into_iter()
                .map(|(k, v)| (k, Json::String(v)))
                .collect();
            link.insert("uri".into(), uri.into());
            if !mime_type.is_empty() {
                link.insert("mimeType".into(), mime_type.into());
            }
            Content::ResourceLink { link }
        }
        // "text", and any type this side does not know.
        _ => Content::Text { text: content.text },
    }
}

fn string_field(value: Option<&Json>) -> String {
    value.and_then(Json::as_str).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(content: Content) {
        assert_eq!(from_pb_content(to_pb_content(content.clone())), content);
    }

    #[test]
    fn every_block_round_trips() {
        round_trip(Content::text("72F"));
        round_trip(Content::Image {
            data: "AQID".into(),
            mime_type: "image/png".into(),
        });
        round_trip(Content::Audio {
            data: "UklGRg==".into(),
            mime_type: "audio/wav".into(),
        });
        round_trip(Content::Resource {
            resource: json!({"uri": "file:///a.txt", "mimeType": "text/plain", "text": "hi"}),
        });
        round_trip(Content::Resource {
            resource: json!({"uri": "file:///a.bin", "mimeType": "application/octet-stream", "blob": "AAE="}),
        });
        let Json::Object(link) =
            json!({"uri": "file:///r", "name": "r", "title": "R", "mimeType": "text/plain"})
        else {
            unreachable!()
        };
        round_trip(Content::ResourceLink { link });
    }

    #[test]
    fn binary_data_is_bytes_on_the_wire_and_described_twice() {
        let pb = to_pb_content(Content::Image {
            data: "AQID".into(),
            mime_type: "image/png".into(),
        });
        assert_eq!(pb.data, [1, 2, 3]);
        assert_eq!(pb.mime_type, "image/png");
        assert_eq!(pb.metadata["mimeType"], "image/png");
        // Not base64: the characters themselves are kept.
        let pb = to_pb_content(Content::Image {
            data: "not base64!".into(),
            mime_type: "image/png".into(),
        });
        assert_eq!(pb.data, b"not base64!");
    }

    /// A seed server fills `metadata` only; an unknown type is read as text.
    #[test]
    fn seed_metadata_and_unknown_types_are_read() {
        let seed = mcp::Content {
            r#type: "resource".into(),
            text: "body".into(),
            metadata: HashMap::from([
                ("uri".to_owned(), "file:///x".to_owned()),
                ("mimeType".to_owned(), "text/plain".to_owned()),
            ]),
            ..Default::default()
        };
        assert_eq!(
            from_pb_content(seed),
            Content::Resource {
                resource: json!({"uri": "file:///x", "mimeType": "text/plain", "text": "body"})
            }
        );
        let hologram = mcp::Content {
            r#type: "hologram".into(),
            text: "3d".into(),
            ..Default::default()
        };
        assert_eq!(from_pb_content(hologram), Content::text("3d"));
    }

    #[test]
    fn blocks_keep_mcp_json_shape() {
        let image: Content = serde_json::from_value(
            json!({"type": "image", "data": "AQID", "mimeType": "image/png"}),
        )
        .unwrap();
        assert!(matches!(image, Content::Image { .. }));
        let link: Content = serde_json::from_value(
            json!({"type": "resource_link", "uri": "u", "name": "n", "size": 3}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&link).unwrap(),
            json!({"type": "resource_link", "uri": "u", "name": "n", "size": 3})
        );
    }
}
