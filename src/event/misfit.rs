//! Why a part of a delivery does not fit the typed model: the reason logged and kept with a
//! [`Payload::OffModel`](super::Payload::OffModel), as `<JSON pointer>: <serde's message>`,
//! with the delivery's values left out (they are the end user's data).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads `value` (found at `at`, a JSON pointer such as `/payload`) as a `T`, or says where
/// and why it does not fit: `/payload/user: invalid type: string, expected a boolean`.
pub(crate) fn typed<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, String> {
    let error = match T::deserialize(value) {
        Ok(typed) => return Ok(typed),
        Err(error) => error,
    };
    // Only on this slow path: read the value again from its text, where serde_json knows
    // the column of the failure, and turn the column into a JSON pointer. (A missing field
    // is found at the end of its object: the pointer names the object.)
    let located = serde_json::to_string(value)
        .ok()
        .and_then(|text| Some((serde_json::from_str::<T>(&text).err()?, text)));
    match located {
        Some((error, text)) => {
            let path = pointer_at(&text, error.column());
            Err(format!("{at}{path}: {}", redacted(&error)))
        }
        None => Err(format!("{at}: {}", redacted(&error))),
    }
}

/// A serde error's message without the value it quotes, and without serde_json's position:
/// `invalid type: string "x", expected a boolean at line 1 column 9` becomes
/// `invalid type: string, expected a boolean`.
fn redacted(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let message = match message.rsplit_once(" at line ") {
        Some((message, _)) if error.line() != 0 => message.to_owned(),
        _ => message,
    };
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some((unexpected, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            let kind = unexpected
                .split(['"', '`'])
                .next()
                .unwrap_or_default()
                .trim();
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    message
}

/// Where in compact JSON `text` the 1-based byte `column` is, as a JSON pointer.
fn pointer_at(text: &str, column: usize) -> String {
    enum Frame {
        /// An object, and the key of the value being read.
        Object(Option<String>),
        /// An array, and the index of the value being read.
        Array(usize),
    }
    let bytes = text.as_bytes();
    let end = column.min(bytes.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut at = 0;
    while at < end {
        match bytes[at] {
            b'{' => stack.push(Frame::Object(None)),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array(index)) => *index += 1,
                Some(Frame::Object(key)) => *key = None,
                None => {}
            },
            b'"' => {
                let start = at;
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object(key @ None)) = stack.last_mut() {
                    *key = text
                        .get(start..=at)
                        .and_then(|literal| serde_json::from_str(literal).ok());
                }
            }
            _ => {}
        }
        at += 1;
    }
    let mut pointer = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Frame::Array(index) => pointer.push_str(&format!("/{index}")),
            Frame::Object(None) => {}
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct User {
        id: String,
        is_verified: bool,
        #[serde(flatten)]
        extra: serde_json::Map<String, Value>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Payload {
        users: Vec<User>,
        #[serde(flatten)]
        extra: serde_json::Map<String, Value>,
    }

    #[test]
    fn says_where_and_why_without_the_values() {
        for (value, reason) in [
            (
                json!({ "users": [{ "id": "a", "is_verified": true },
                    { "id": "b", "is_verified": "secret@example.com" }] }),
                "/payload/users/1/is_verified: invalid type: string, expected a boolean",
            ),
            (
                json!({ "users": [{ "is_verified": true }] }),
                "/payload/users/0: missing field `id`",
            ),
            (json!({}), "/payload: missing field `users`"),
            (
                json!(null),
                "/payload: invalid type: null, expected struct Payload",
            ),
            (
                json!({ "users": { "a/b~c": 1 } }),
                "/payload/users: invalid type: map, expected a sequence",
            ),
        ] {
            assert_eq!(
                typed::<Payload>(&value, "/payload").unwrap_err(),
                reason,
                "{value}"
            );
        }
        assert!(typed::<Payload>(&json!({ "users": [] }), "/payload").is_ok());
    }

    #[test]
    fn pointers_escape_and_count() {
        let text = r#"{"a/b":{"c~d":[1,{"e":"x,}]"}]}}"#;
        assert_eq!(pointer_at(text, 27), "/a~1b/c~0d/1/e");
        assert_eq!(pointer_at(text, 0), "");
    }
}
