//! The message a push subscription POSTs to an endpoint, in both of Pub/Sub's forms:
//!
//! - wrapped (the default): a JSON body `{"subscription", "message": {"data": base64,
//!   "attributes", "messageId", "publishTime", "orderingKey"?}, "deliveryAttempt"?}`
//!   (`deliveryAttempt` only with a dead-letter policy);
//! - unwrapped (`pushConfig.noWrapper` with `writeMetadata`): the body is the data itself,
//!   the metadata comes in `x-goog-pubsub-*` headers and each attribute in a header of its own
//!   name. Without `writeMetadata` no message id arrives and the push cannot be deduplicated:
//!   it is refused here.
//!
//! A body that is neither is a [`PushError`]. The endpoint should answer it with a 2xx (an ack)
//! and log it: Pub/Sub would deliver the same bytes again until the message expires, and no
//! retry can fix them.

use std::collections::BTreeMap;

use base64::Engine as _;
use http::HeaderMap;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Metadata headers of an unwrapped push.
const MESSAGE_ID: &str = "x-goog-pubsub-message-id";
const PUBLISH_TIME: &str = "x-goog-pubsub-publish-time";
const SUBSCRIPTION: &str = "x-goog-pubsub-subscription-name";
const ORDERING_KEY: &str = "x-goog-pubsub-ordering-key";
const DELIVERY_ATTEMPT: &str = "x-goog-pubsub-delivery-attempt";

/// Headers an unwrapped push carries that are not attributes: HTTP's own, and what Google's
/// front ends, proxies and tracing add on the way.
const NOT_ATTRIBUTES: &[&str] = &[
    "accept",
    "accept-encoding",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "forwarded",
    "from",
    "host",
    "keep-alive",
    "te",
    "traceparent",
    "tracestate",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
];
const NOT_ATTRIBUTE_PREFIXES: &[&str] = &["x-goog-", "x-forwarded-", "x-cloud-", "x-envoy-"];

/// One pushed message.
#[derive(Debug, Clone, PartialEq)]
pub struct PushMessage {
    /// Pub/Sub's id of the message: the same on every redelivery, so it is the key to
    /// deduplicate on.
    pub message_id: String,
    /// The message's data, decoded.
    pub data: Vec<u8>,
    /// Its attributes. In an unwrapped push they come as headers, so their names arrive in
    /// lowercase.
    pub attributes: BTreeMap<String, String>,
    /// `projects/P/subscriptions/S`, when given.
    pub subscription: Option<String>,
    /// When it was published.
    pub publish_time: Option<OffsetDateTime>,
    /// Its ordering key, if it was published with one.
    pub ordering_key: Option<String>,
    /// How many times it has been delivered (only with a dead-letter policy).
    pub delivery_attempt: Option<u32>,
    /// Whether it came wrapped in JSON (else unwrapped, its metadata in headers).
    pub wrapped: bool,
}

/// Why a request is not a push this can read. `Display`: one line for the log; answer the push
/// with a 2xx so that it is not delivered again for ever.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The body is not the wrapped JSON form, and no `x-goog-pubsub-message-id` header says
    /// it is unwrapped.
    #[error(
        "malformed Pub/Sub push: the body is not a push message ({0}); an unwrapped push needs writeMetadata (x-goog-pubsub-* headers)"
    )]
    Malformed(String),
    /// A field a push always has is missing or empty.
    #[error("malformed Pub/Sub push: no {0}")]
    Missing(&'static str),
    /// A field has a value of the wrong form.
    #[error("malformed Pub/Sub push: {field} {problem}")]
    BadValue {
        /// The field (`message.data`, `x-goog-pubsub-publish-time`).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl PushMessage {
    /// The push in `headers` and `body`: unwrapped when `x-goog-pubsub-message-id` is
    /// present, else wrapped.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, PushError> {
        if headers.contains_key(MESSAGE_ID) {
            Self::parse_unwrapped(headers, body)
        } else {
            Self::parse_wrapped(body)
        }
    }

    /// A wrapped push's JSON body.
    pub fn parse_wrapped(body: &[u8]) -> Result<Self, PushError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wrapper {
            message: Option<Message>,
            subscription: Option<String>,
            delivery_attempt: Option<u32>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Message {
            #[serde(default)]
            data: Option<String>,
            #[serde(default)]
            attributes: BTreeMap<String, String>,
            // Each comes in camelCase and, from the emulator and older pushes, in snake_case
            // too (both at once: serde's aliases would call that a duplicate).
            message_id: Option<String>,
            #[serde(rename = "message_id")]
            message_id_snake: Option<String>,
            publish_time: Option<String>,
            #[serde(rename = "publish_time")]
            publish_time_snake: Option<String>,
            ordering_key: Option<String>,
            #[serde(rename = "ordering_key")]
            ordering_key_snake: Option<String>,
        }
        let wrapper: Wrapper = serde_json::from_slice(body).map_err(|e| {
            PushError::Malformed(match e.classify() {
                serde_json::error::Category::Data => e.to_string(),
                _ => format!("not JSON: {e}"),
            })
        })?;
        let message = wrapper.message.ok_or(PushError::Missing("message"))?;
        let message_id = message
            .message_id
            .or(message.message_id_snake)
            .filter(|id| !id.is_empty())
            .ok_or(PushError::Missing("message.messageId"))?;
        let data = match message.data {
            None => Vec::new(),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| PushError::BadValue {
                    field: "message.data",
                    problem: "is not base64".into(),
                })?,
        };
        Ok(Self {
            message_id,
            data,
            attributes: message.attributes,
            subscription: wrapper.subscription,
            publish_time: time_of(
                "message.publishTime",
                message
                    .publish_time
                    .or(message.publish_time_snake)
                    .as_deref(),
            )?,
            ordering_key: message
                .ordering_key
                .or(message.ordering_key_snake)
                .filter(|k| !k.is_empty()),
            delivery_attempt: wrapper.delivery_attempt,
            wrapped: true,
        })
    }

    /// An unwrapped push: the body is the data, the metadata and attributes are headers.
    pub fn parse_unwrapped(headers: &HeaderMap, body: &[u8]) -> Result<Self, PushError> {
        let text =
            |name: &'static str| -> Result<Option<String>, PushError> {
                match headers.get(name) {
                    None => Ok(None),
                    Some(v) => v.to_str().map(|s| Some(s.trim().to_owned())).map_err(|_| {
                        PushError::BadValue {
                            field: name,
                            problem: "is not text".into(),
                        }
                    }),
                }
            };
        let message_id = text(MESSAGE_ID)?
            .filter(|id| !id.is_empty())
            .ok_or(PushError::Missing(MESSAGE_ID))?;
        let delivery_attempt = match text(DELIVERY_ATTEMPT)? {
            None => None,
            Some(n) => Some(n.parse().map_err(|_| PushError::BadValue {
                field: DELIVERY_ATTEMPT,
                problem: format!("{n:?} is not a count"),
            })?),
        };
        let attributes = headers
            .iter()
            .filter(|(name, _)| {
                let name = name.as_str();
                !NOT_ATTRIBUTES.contains(&name)
                    && !NOT_ATTRIBUTE_PREFIXES.iter().any(|p| name.starts_with(p))
            })
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        Ok(Self {
            message_id,
            data: body.to_vec(),
            attributes,
            subscription: text(SUBSCRIPTION)?,
            publish_time: time_of(PUBLISH_TIME, text(PUBLISH_TIME)?.as_deref())?,
            ordering_key: text(ORDERING_KEY)?.filter(|k| !k.is_empty()),
            delivery_attempt,
            wrapped: false,
        })
    }

    /// The attribute `name`, matched without regard to case (an unwrapped push's attributes
    /// arrive as lowercase header names).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(name)
            .or_else(|| {
                self.attributes
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }
}

fn time_of(field: &'static str, text: Option<&str>) -> Result<Option<OffsetDateTime>, PushError> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339).map_err(|_| PushError::BadValue {
                field,
                problem: format!("{t:?} is not an RFC 3339 time"),
            })
        })
        .transpose()
}
