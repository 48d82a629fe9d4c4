//! Messages as clients send them (Segment's calls, native events, import rows) read into what
//! ingestion stores: their kind, ids (within their limits), time (with Segment's clock-skew
//! correction), traits and properties.

use leadscore_core::Timestamp;
use serde_json::{Map, Value};

/// Future timestamps more than this far ahead of the server's clock are refused.
const FUTURE_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// What a message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Sets traits (attributes) of the lead; no event.
    Identify,
    /// An event named by the message.
    Track(String),
    /// Segment's `alias`: `previous_id` (an anonymous id or an earlier user id) is the same
    /// person as the message's user; their leads are merged.
    Alias { previous_id: String },
    /// Segment's `group`: the lead belongs to account `group_id`, whose traits become the lead's
    /// `company_*` attributes.
    Group { group_id: String },
}

/// One validated message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: Kind,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub message_id: String,
    pub at: i64,
    pub traits: Map<String, Value>,
    pub properties: Map<String, Value>,
}

/// The most characters of an id (user, anonymous, message, previous or group id) or an event
/// type, on every path that ingests (Segment messages, native events, CSV imports).
pub const ID_LIMIT: usize = 200;

/// The character PostgreSQL's text cannot hold, which SQLite's can: refused in every text of a
/// message (ids, event types, traits and properties, their keys too) on either store alike, so
/// that what one store takes the other takes, and a client's mistake is answered as one rather
/// than as a failure of the database. Properties too: stored as JSON text, they would hold it as
/// `\u0000`, which PostgreSQL's `jsonb` refuses to read, and the erasure of a lead reads its
/// events' properties that way (`postgres/erasure.rs`).
const NUL: char = '\0';

/// What a text holding [`NUL`] is told, after its field's name.
const NUL_REFUSAL: &str = "contains the character U+0000 (NUL), which is not stored: remove it";

/// The place (`traits.address.street`, `properties.items[2]`) of the first key or string under
/// `map` that holds [`NUL`], named from `root`.
fn place_of_nul(map: &Map<String, Value>, root: &str) -> Option<String> {
    fn in_value(value: &Value, place: String) -> Option<String> {
        match value {
            Value::String(text) => text.contains(NUL).then_some(place),
            Value::Array(items) => {
                items.iter().enumerate().find_map(|(i, item)| in_value(item, format!("{place}[{i}]")))
            }
            Value::Object(map) => in_map(map, &place),
            _ => None,
        }
    }
    fn in_map(map: &Map<String, Value>, place: &str) -> Option<String> {
        map.iter().find_map(|(key, value)| {
            let place = format!("{place}.{key}");
            if key.contains(NUL) { Some(place) } else { in_value(value, place) }
        })
    }
    in_map(map, root)
}

/// Whether `text` is an id of 1 to [`ID_LIMIT`] characters (characters, not bytes: an id in
/// Cyrillic or Chinese is held to the same length as one in Latin letters).
/// `field` names the field as the message says it (`` `userId` ``).
pub fn check_id(field: &str, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if text.contains(NUL) {
        return Err(format!("{field} {NUL_REFUSAL}"));
    }
    let characters = text.chars().count();
    if characters > ID_LIMIT {
        return Err(format!("{field} has {characters} characters; at most {ID_LIMIT} are stored"));
    }
    Ok(())
}

impl Message {
    /// Checks the ids and the event type against [`ID_LIMIT`], and every text against `NUL`:
    /// one rule for every path, so that nothing is stored that cannot be read back by its id.
    pub fn check_limits(&self) -> Result<(), String> {
        check_id("`messageId` (an event's `id`)", &self.message_id)?;
        if let Some(user_id) = &self.user_id {
            check_id("`userId` (an event's `lead`)", user_id)?;
        }
        if let Some(anonymous_id) = &self.anonymous_id {
            check_id("`anonymousId`", anonymous_id)?;
        }
        match &self.kind {
            Kind::Track(event) => check_id("`event` (an event's `type`)", event)?,
            Kind::Alias { previous_id } => check_id("`previousId`", previous_id)?,
            Kind::Group { group_id } => check_id("`groupId`", group_id)?,
            Kind::Identify => {}
        }
        for (map, root) in [(&self.traits, "traits"), (&self.properties, "properties")] {
            if let Some(place) = place_of_nul(map, root) {
                return Err(format!("`{}` {NUL_REFUSAL}", place.replace('\0', "\\u0000")));
            }
        }
        Ok(())
    }
}

/// A unique id for a message that came without one.
pub fn generated_id(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{}-{n}", std::process::id(), leadscore_store::now_ms())
}

/// Reads one Segment message (identify, track, page, screen) from JSON. `sent_at` is the batch's
/// `sentAt` when the message has none; `received_at` is the server's clock.
pub fn parse_message(
    value: &Value,
    kind_hint: Option<&str>,
    batch_sent_at: Option<&str>,
    received_at: i64,
) -> Result<Message, String> {
    let object = value.as_object().ok_or("a message must be a JSON object")?;
    let text = |key: &str| -> Result<Option<String>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let kind_name = match (kind_hint, text("type")?) {
        (Some(hint), _) => hint.to_string(),
        (None, Some(kind)) => kind,
        (None, None) => return Err("`type` is missing: identify, track, page, screen, group or alias".to_string()),
    };
    let kind = match kind_name.as_str() {
        "identify" => Kind::Identify,
        "track" => Kind::Track(text("event")?.ok_or("`event` is missing: a track call names its event")?),
        "page" => Kind::Track("page_view".to_string()),
        "screen" => Kind::Track("screen_view".to_string()),
        "alias" => Kind::Alias {
            previous_id: text("previousId")?.ok_or("`previousId` is missing: alias names the earlier id")?,
        },
        "group" => Kind::Group { group_id: text("groupId")?.ok_or("`groupId` is missing: group names the account")? },
        other => {
            return Err(format!(
                "`type` `{other}` is not supported: use identify, track, page, screen, group or alias"
            ));
        }
    };
    if matches!(kind, Kind::Alias { .. }) && text("userId")?.is_none() {
        return Err("`userId` is missing: alias links `previousId` to a user".to_string());
    }
    let user_id = text("userId")?;
    let anonymous_id = text("anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err("`userId` or `anonymousId` is required".to_string());
    }
    let message_id = text("messageId")?.ok_or("`messageId` is required (it makes retries safe)")?;
    let time = |key: &str| -> Result<Option<i64>, String> {
        match text(key)? {
            None => Ok(None),
            Some(t) => Timestamp::parse_rfc3339(&t).map(|t| Some(t.0)).map_err(|_| {
                format!(
                    "`{key}` is not an ISO 8601 / RFC 3339 time with an offset: `{}`",
                    t.chars().take(40).collect::<String>()
                )
            }),
        }
    };
    // Segment's clock-skew correction: the client's clock error is sentAt - receivedAt.
    let sent_at = match time("sentAt")? {
        Some(sent) => Some(sent),
        None => batch_sent_at.and_then(|t| Timestamp::parse_rfc3339(t).ok()).map(|t| t.0),
    };
    let at = match (time("timestamp")?, time("originalTimestamp")?, sent_at) {
        (_, Some(original), Some(sent)) => received_at - (sent - original),
        (Some(timestamp), _, _) => timestamp,
        (None, Some(original), None) => original,
        (None, None, _) => received_at,
    };
    if at > received_at + FUTURE_TOLERANCE_MS {
        return Err(format!(
            "`timestamp` {} is in the future (the server's clock says {}); send sentAt to correct a client clock",
            Timestamp(at),
            Timestamp(received_at)
        ));
    }
    let object_field = |key: &str| -> Result<Map<String, Value>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(_) => Err(format!("`{key}` must be an object")),
        }
    };
    let mut properties = object_field("properties")?;
    if let Some(name) = text("name")? {
        properties.entry("name").or_insert(Value::String(name));
    }
    let mut traits = object_field("traits")?;
    if traits.is_empty() {
        // Segment libraries also put traits under context.traits.
        if let Some(Value::Object(context_traits)) = object.get("context").and_then(|c| c.get("traits")) {
            traits = context_traits.clone();
        }
    }
    Ok(Message { kind, user_id, anonymous_id, message_id, at, traits, properties })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn track(user_id: &str, event: &str, traits: Value, properties: Value) -> Message {
        let map = |value: Value| match value {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Message {
            kind: Kind::Track(event.to_string()),
            user_id: Some(user_id.to_string()),
            anonymous_id: None,
            message_id: "m1".to_string(),
            at: 0,
            traits: map(traits),
            properties: map(properties),
        }
    }

    #[test]
    fn a_nul_character_anywhere_in_a_message_is_refused_with_its_place() {
        assert_eq!(
            track("u1", "visit", json!({"name": "Ада"}), json!({"items": ["a", {"b": 1}]})).check_limits(),
            Ok(())
        );
        let refused = |message: Message| message.check_limits().unwrap_err();
        assert!(refused(track("u\0", "visit", json!({}), json!({}))).starts_with("`userId`"));
        assert!(refused(track("u1", "vi\0sit", json!({}), json!({}))).starts_with("`event`"));
        assert_eq!(
            refused(track("u1", "visit", json!({"name": "a\0b"}), json!({}))),
            format!("`traits.name` {NUL_REFUSAL}")
        );
        assert_eq!(
            refused(track("u1", "visit", json!({}), json!({"items": ["a", {"title": "x\0"}]}))),
            format!("`properties.items[1].title` {NUL_REFUSAL}")
        );
        // A key is named as it is, its NUL written as JSON writes it.
        assert_eq!(
            refused(track("u1", "visit", json!({"n\0": "x"}), json!({}))),
            format!("`traits.n\\u0000` {NUL_REFUSAL}")
        );
    }
}
