//! Structured queries over one collection (`runQuery`): equality and range filters, an order,
//! a start after a cursor, a limit; and the page tokens that carry a cursor between requests.
//!
//! On Google Cloud a filter on one field ordered by another needs a composite index (`gcloud
//! firestore indexes composite create --collection-group=runs --field-config=field-path=
//! session_id,order=ascending --field-config=field-path=created_at,order=descending`); the
//! emulator needs none, and real Firestore's refusal names the index to create.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::value::{Document, Value};

/// A comparison of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Op {
    /// `==`.
    Equal,
    /// `!=`.
    NotEqual,
    /// `<`.
    LessThan,
    /// `<=`.
    LessThanOrEqual,
    /// `>`.
    GreaterThan,
    /// `>=`.
    GreaterThanOrEqual,
    /// The array field holds the value.
    ArrayContains,
    /// The field equals one of the values of an array value.
    In,
}

/// An order's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    /// Smallest first.
    Ascending,
    /// Largest first.
    Descending,
}

/// The field every document has, its name; the last order of a page, so that a cursor is
/// exact even when other fields tie.
pub const NAME_FIELD: &str = "__name__";

/// A query over the documents of one collection under a parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub(crate) collection: String,
    filters: Vec<(String, Op, Value)>,
    order: Vec<(String, Direction)>,
    start_after: Option<Vec<Value>>,
    limit: Option<u32>,
}

impl Query {
    /// Every document of the collection `collection` (an id such as `events`, not a path: the
    /// parent is given to [`super::Firestore::run_query`]).
    pub fn collection(collection: impl Into<String>) -> Self {
        Self {
            collection: collection.into(),
            filters: Vec::new(),
            order: Vec::new(),
            start_after: None,
            limit: None,
        }
    }

    /// Only documents whose `field` compares so with `value` (filters are all ANDed).
    pub fn filter(mut self, field: impl Into<String>, op: Op, value: impl Into<Value>) -> Self {
        self.filters.push((field.into(), op, value.into()));
        self
    }

    /// Ordered by `field` (after the orders given before). Documents lacking the field are
    /// left out, as Firestore does.
    pub fn order_by(mut self, field: impl Into<String>, direction: Direction) -> Self {
        self.order.push((field.into(), direction));
        self
    }

    /// Only documents after the one whose order fields have `values` (one per order, in order;
    /// for [`NAME_FIELD`] a [`Value::Reference`]).
    pub fn start_after(mut self, values: Vec<Value>) -> Self {
        self.start_after = Some(values);
        self
    }

    /// At most `limit` documents.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The order fields, for cursors.
    pub(crate) fn order_fields(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|(f, _)| f.as_str())
    }

    /// The direction of the last order (a name order that breaks ties goes the same way, as
    /// Firestore's implicit one does).
    pub(crate) fn last_direction(&self) -> Direction {
        self.order.last().map_or(Direction::Ascending, |(_, d)| *d)
    }

    pub(crate) fn has_name_order(&self) -> bool {
        self.order.iter().any(|(f, _)| f == NAME_FIELD)
    }

    /// `{"structuredQuery": {...}}`.
    pub(crate) fn wire(&self) -> serde_json::Value {
        use serde_json::json;
        let filter = |(field, op, value): &(String, Op, Value)| json!({"fieldFilter": {"field": {"fieldPath": field}, "op": op, "value": value}});
        let mut q = json!({"from": [{"collectionId": self.collection}]});
        match self.filters.as_slice() {
            [] => {}
            [one] => q["where"] = filter(one),
            many => {
                q["where"] = json!({"compositeFilter": {
                    "op": "AND", "filters": many.iter().map(filter).collect::<Vec<_>>()
                }})
            }
        }
        if !self.order.is_empty() {
            q["orderBy"] = self
                .order
                .iter()
                .map(|(f, d)| json!({"field": {"fieldPath": f}, "direction": d}))
                .collect();
        }
        if let Some(values) = &self.start_after {
            q["startAt"] = json!({"values": values, "before": false});
        }
        if let Some(limit) = self.limit {
            q["limit"] = json!(limit);
        }
        json!({"structuredQuery": q})
    }
}

/// One page of a listing, and the token of the next one (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The page's documents, in the query's order.
    pub documents: Vec<Document>,
    /// Gives the next page to [`super::Firestore::page`]; opaque to clients.
    pub next_page_token: Option<String>,
}

/// A page token: the last document's order values and its name, as Firestore values, in
/// URL-safe base64 of their JSON.
#[derive(Serialize, Deserialize)]
struct Token(Vec<Value>);

/// The token after `last`, for a query ordered by `fields` and then its name.
pub(crate) fn token_after<'a>(
    last: &Document,
    fields: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let mut values = Vec::new();
    for field in fields {
        values.push(last.fields.get(field)?.clone());
    }
    values.push(Value::Reference(last.name.clone()));
    let json = serde_json::to_vec(&Token(values)).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

/// The cursor values of a token for a query with `orders` order fields (its name included),
/// whose documents' names start with `prefix`; `None` if it is not a token this gave.
pub(crate) fn cursor_of(token: &str, orders: usize, prefix: &str) -> Option<Vec<Value>> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()?;
    let Token(values) = serde_json::from_slice(&json).ok()?;
    let name_ok = matches!(values.last(), Some(Value::Reference(n)) if n.starts_with(prefix));
    (values.len() == orders && name_ok).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_takes_firestores_json_form() {
        let q = Query::collection("events")
            .filter("seq", Op::GreaterThan, 2i64)
            .order_by("seq", Direction::Ascending)
            .limit(100);
        assert_eq!(
            q.wire(),
            serde_json::json!({"structuredQuery": {
                "from": [{"collectionId": "events"}],
                "where": {"fieldFilter": {"field": {"fieldPath": "seq"}, "op": "GREATER_THAN",
                                          "value": {"integerValue": "2"}}},
                "orderBy": [{"field": {"fieldPath": "seq"}, "direction": "ASCENDING"}],
                "limit": 100
            }})
        );
        let two = Query::collection("runs")
            .filter("a", Op::Equal, "x")
            .filter("b", Op::Equal, true)
            .start_after(vec![Value::Integer(1)]);
        let wire = two.wire();
        assert_eq!(
            wire["structuredQuery"]["where"]["compositeFilter"]["op"],
            "AND"
        );
        assert_eq!(
            wire["structuredQuery"]["startAt"],
            serde_json::json!({"values": [{"integerValue": "1"}], "before": false})
        );
    }

    #[test]
    fn page_tokens_round_trip_and_refuse_what_they_did_not_make() {
        let doc = Document {
            name: "projects/p/databases/(default)/documents/runs/r1".into(),
            fields: [("created_at".to_owned(), Value::Integer(7))].into(),
            create_time: None,
            update_time: None,
        };
        let token = token_after(&doc, ["created_at"].into_iter()).unwrap();
        let prefix = "projects/p/databases/(default)/documents/runs/";
        let values = cursor_of(&token, 2, prefix).unwrap();
        assert_eq!(
            values,
            [Value::Integer(7), Value::Reference(doc.name.clone())]
        );
        assert_eq!(cursor_of(&token, 3, prefix), None);
        assert_eq!(cursor_of(&token, 2, "projects/other/"), None);
        assert_eq!(cursor_of("not a token!", 2, prefix), None);
        // A document without the order field cannot be a cursor.
        assert_eq!(token_after(&doc, ["missing"].into_iter()), None);
    }
}
