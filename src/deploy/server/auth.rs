//! Bearer tokens: a file of `NAME TOKEN` lines, or one random token made at start. A token
//! names its tenant, and a tenant's keys are stored under its name.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Shortest token accepted from a file (characters).
pub const MIN_TOKEN_LEN: usize = 16;

/// The tenants and their tokens (kept as SHA-256 hashes).
#[derive(Clone, Debug)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], String>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `name` may name a tenant (it becomes part of store paths).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Tokens {
    /// Reads `NAME TOKEN` lines (blank lines and `#` comments skipped). Refuses malformed
    /// lines, bad names, short tokens and duplicates, naming the line.
    pub fn from_file(path: &Path) -> Result<Tokens> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() > 1 << 20 {
            return Err(Error::Input(format!(
                "{}: a tokens file over 1 MiB is not a tokens file",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Tokens::parse(&text).map_err(|m| Error::Input(format!("{}: {m}", path.display())))
    }

    /// Parses the content of a tokens file.
    pub fn parse(text: &str) -> std::result::Result<Tokens, String> {
        let mut by_hash = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, token] = fields[..] else {
                return Err(format!(
                    "line {}: expected `NAME TOKEN`, found {} fields",
                    i + 1,
                    fields.len()
                ));
            };
            if !valid_name(name) {
                return Err(format!(
                    "line {}: tenant names are 1 to 64 letters, digits, `-` or `_`",
                    i + 1
                ));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "line {}: the token of {name} has {} characters, fewer than {MIN_TOKEN_LEN}: \
                     use a random token (for example `openssl rand -hex 32`)",
                    i + 1,
                    token.len()
                ));
            }
            if !names.insert(name.to_string()) {
                return Err(format!("line {}: tenant {name} appears twice", i + 1));
            }
            if by_hash.insert(hash(token), name.to_string()).is_some() {
                return Err(format!(
                    "line {}: this token is already another tenant's",
                    i + 1
                ));
            }
        }
        if by_hash.is_empty() {
            return Err("no `NAME TOKEN` line: the server would refuse everyone".into());
        }
        Ok(Tokens { by_hash })
    }

    /// One tenant, `default`, with a random token (returned, to be shown once).
    pub fn random() -> (Tokens, String) {
        use rand::RngCore;
        let mut b = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let token: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let by_hash = HashMap::from([(hash(&token), "default".to_string())]);
        (Tokens { by_hash }, token)
    }

    /// The tenant of an `Authorization` header's value (`Bearer TOKEN`), if any.
    pub fn tenant(&self, authorization: Option<&str>) -> Option<&str> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        self.by_hash.get(&hash(token)).map(String::as_str)
    }

    /// Number of tenants.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether there is no tenant (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_files_are_checked_line_by_line() {
        let t = Tokens::parse("# team\nalice 0123456789abcdef0123\n\nbob   fedcba9876543210fedc\n")
            .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.tenant(Some("Bearer 0123456789abcdef0123")), Some("alice"));
        assert_eq!(t.tenant(Some("Bearer fedcba9876543210fedc")), Some("bob"));
        assert_eq!(t.tenant(Some("Bearer nope")), None);
        assert_eq!(t.tenant(Some("0123456789abcdef0123")), None);
        assert_eq!(t.tenant(None), None);
        for bad in [
            "alice",
            "alice short",
            "../x 0123456789abcdef0123",
            "a 0123456789abcdef0123\na 1123456789abcdef0123",
            "a 0123456789abcdef0123\nb 0123456789abcdef0123",
            "a b c",
            "# nothing",
        ] {
            assert!(Tokens::parse(bad).is_err(), "{bad}");
        }
        let (t, token) = Tokens::random();
        assert_eq!(t.tenant(Some(&format!("Bearer {token}"))), Some("default"));
    }
}
