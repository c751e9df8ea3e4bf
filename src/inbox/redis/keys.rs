//! The layout in Redis: the names of the store's keys, and of an event in them
//! ([`RedisStore`](super::RedisStore)'s `# Layout` says what each key holds).

use crate::inbox::store::EventKey;

/// The consumer group every instance reads the stream with.
pub(super) const GROUP: &str = "workers";

/// The store's fixed keys, and the start of every parked event's key.
pub(super) struct Keys {
    pub(super) stream: String,
    pub(super) seen: String,
    pub(super) retry: String,
    pub(super) dead: String,
    pub(super) done: String,
    pub(super) bytes: String,
    pub(super) next: String,
    pub(super) cursor: String,
    pub(super) cleanup: String,
    pub(super) parked: String,
    /// The start of every catch-up lease's key: [`lease`](Self::lease).
    leases: String,
    pub(super) checkpoints: String,
    /// Written for a moment by each [`probe`](crate::inbox::Store::probe).
    pub(super) probe: String,
    /// The keys of version 0.1.0 that held events: stream, retry, dead. The claim script
    /// fails while they hold any.
    pub(super) older: [String; 3],
}

impl Keys {
    /// The keys of the store with this prefix: `{prefix}:v2:` and a name (the braces put
    /// them in one Cluster hash slot), and 0.1.0's `{prefix}:` and a name.
    pub(super) fn new(prefix: &str) -> Self {
        let older = |name: &str| format!("{{{prefix}}}:{name}");
        let base = format!("{{{prefix}}}:v2:");
        let key = |name: &str| format!("{base}{name}");
        Self {
            stream: key("stream"),
            seen: key("seen"),
            retry: key("retry"),
            dead: key("dead"),
            done: key("done"),
            bytes: key("bytes"),
            next: key("next"),
            cursor: key("cursor"),
            cleanup: key("cleanup"),
            parked: key("p:"),
            leases: key("lease:"),
            checkpoints: key("checkpoints"),
            probe: key("probe"),
            older: [older("stream"), older("retry"), older("dead")],
        }
    }

    /// The key of the catch-up's lease `name`.
    pub(super) fn lease(&self, name: &str) -> String {
        format!("{}{name}", self.leases)
    }
}

/// The member naming `key` in the indexes and the stream: the endpoint (each NUL written
/// as NUL 0x01), two NULs, the id. Unique, and sorted as (endpoint, id) for endpoints
/// without NUL.
pub(super) fn member(key: &EventKey) -> Vec<u8> {
    let mut member = Vec::with_capacity(key.endpoint.len() + key.id.len() + 2);
    for &byte in key.endpoint.as_bytes() {
        member.push(byte);
        if byte == 0 {
            member.push(1);
        }
    }
    member.extend_from_slice(&[0, 0]);
    member.extend_from_slice(key.id.as_bytes());
    member
}

/// The key a [`member`] names; `None` if it is not one.
pub(super) fn key_of(member: &[u8]) -> Option<EventKey> {
    let mut endpoint = Vec::with_capacity(member.len());
    let mut bytes = member.iter().copied();
    loop {
        let byte = bytes.next()?;
        if byte == 0 {
            match bytes.next()? {
                0 => break,
                1 => {}
                _ => return None,
            }
        }
        endpoint.push(byte);
    }
    let id = bytes.collect();
    Some(EventKey {
        endpoint: String::from_utf8(endpoint).ok()?,
        id: String::from_utf8(id).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_names_its_key_and_nothing_else() {
        for (endpoint, id) in [("/", "1"), ("/a\0b", "x\0\0y"), ("", ""), ("\0", "\0")] {
            let key = EventKey::new(endpoint, id);
            assert_eq!(key_of(&member(&key)), Some(key));
        }
        assert_eq!(key_of(b"no separator"), None);
        assert_eq!(key_of(b"/a\0\x02b\0\0id"), None);
    }

    #[test]
    fn the_keys_are_under_the_braced_prefix() {
        let keys = Keys::new("authgear-webhook:inbox");
        assert_eq!(keys.stream, "{authgear-webhook:inbox}:v2:stream");
        assert_eq!(keys.parked, "{authgear-webhook:inbox}:v2:p:");
        assert_eq!(keys.lease("x"), "{authgear-webhook:inbox}:v2:lease:x");
        assert_eq!(keys.older[2], "{authgear-webhook:inbox}:dead");
    }
}
