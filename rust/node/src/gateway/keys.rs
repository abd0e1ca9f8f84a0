//! OpenWhisk API keys (`uuid:key`, as `wsk property get --auth` prints them) and the namespace
//! each one owns: the gateway's `--keys` file.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;

/// The namespace of a key whose line names none: OpenWhisk's default user.
pub const DEFAULT_NAMESPACE: &str = "guest";

/// A keys file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {error}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        error: std::io::Error,
    },
    /// A line is refused.
    #[error("{file}:{line}: {reason}")]
    Line {
        /// The file.
        file: String,
        /// Its line, from 1.
        line: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// No key at all.
    #[error(
        "{file}: no key: write one `UUID:KEY [NAMESPACE]` per line, or start the gateway with --no-auth"
    )]
    Empty {
        /// The file.
        file: String,
    },
}

/// Who called: the namespace the key owns (`_` stands for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The key's namespace.
    pub namespace: String,
    /// Whether the subject may use any namespace (`--no-auth`).
    pub any_namespace: bool,
}

/// The keys the gateway accepts, by `uuid:key`.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    by_key: HashMap<String, String>,
}

/// Why a request's credentials are refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Basic ...` header, or one that does not decode.
    Missing,
    /// A key the gateway does not know.
    Invalid,
}

impl Keys {
    /// Parses a keys file: one `UUID:KEY [NAMESPACE]` per line (namespace `guest` unless
    /// given), `#` comments and blank lines ignored; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, KeysError> {
        let mut by_key = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let error = |reason: String| KeysError::Line {
                file: file.to_owned(),
                line: index + 1,
                reason,
            };
            let mut fields = line.split_whitespace();
            let key = fields.next().unwrap_or_default();
            let namespace = fields.next().unwrap_or(DEFAULT_NAMESPACE);
            if let Some(extra) = fields.next() {
                return Err(error(format!(
                    "unexpected `{extra}`: a line is `UUID:KEY [NAMESPACE]`"
                )));
            }
            match key.split_once(':') {
                Some((uuid, secret)) if !uuid.is_empty() && !secret.is_empty() => {}
                _ => {
                    return Err(error(
                        "the key must be `UUID:KEY` (as `wsk property get --auth` prints it), both parts non-empty".into(),
                    ));
                }
            }
            if namespace == "_" || namespace.contains('/') {
                return Err(error(format!(
                    "namespace `{namespace}`: give a name without `/`, not `_` (which stands for the key's own)"
                )));
            }
            if by_key
                .insert(key.to_owned(), namespace.to_owned())
                .is_some()
            {
                return Err(error("this key is listed twice: list each key once".into()));
            }
        }
        if by_key.is_empty() {
            return Err(KeysError::Empty {
                file: file.to_owned(),
            });
        }
        Ok(Keys { by_key })
    }

    /// Reads a keys file (see [`Keys::parse`]).
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| KeysError::Read {
            file: file.clone(),
            error,
        })?;
        Self::parse(&text, &file)
    }

    /// The subject of an `Authorization` header's value.
    pub fn check(&self, header: Option<&str>) -> Result<Subject, AuthError> {
        let encoded = header
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
            })
            .ok_or(AuthError::Missing)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(AuthError::Missing)?;
        match self.by_key.get(&decoded) {
            Some(namespace) => Ok(Subject {
                namespace: namespace.clone(),
                any_namespace: false,
            }),
            None => Err(AuthError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    #[test]
    fn keys_name_their_namespace_or_default_to_guest() {
        let keys = Keys::parse("# keys\nab:cd\n\nef:gh alice  # Alice's\n", "k").unwrap();
        assert_eq!(
            keys.check(Some(&basic("ab:cd"))).unwrap().namespace,
            "guest"
        );
        assert_eq!(
            keys.check(Some(&basic("ef:gh"))).unwrap().namespace,
            "alice"
        );
        assert_eq!(keys.check(Some(&basic("ab:xx"))), Err(AuthError::Invalid));
        assert_eq!(keys.check(None), Err(AuthError::Missing));
        assert_eq!(keys.check(Some("Bearer x")), Err(AuthError::Missing));
        assert_eq!(keys.check(Some("Basic !!!")), Err(AuthError::Missing));
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_and_fix() {
        let error = Keys::parse("ab:cd\nnocolon\n", "k.txt")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("k.txt:2: the key must be `UUID:KEY`"),
            "{error}"
        );
        let error = Keys::parse("ab:cd _\n", "k").unwrap_err().to_string();
        assert!(error.contains("namespace `_`"), "{error}");
        let error = Keys::parse("ab:cd\nab:cd\n", "k").unwrap_err().to_string();
        assert!(error.contains("k:2: this key is listed twice"), "{error}");
        let error = Keys::parse("ab:cd x y\n", "k").unwrap_err().to_string();
        assert!(error.contains("unexpected `y`"), "{error}");
        let error = Keys::parse("# none\n", "k").unwrap_err().to_string();
        assert!(error.contains("--no-auth"), "{error}");
    }
}
