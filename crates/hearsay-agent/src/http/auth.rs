//! Who may call the HTTP API: a bearer token (RFC 6750) that every call
//! but `/health` (and `/metrics` when it is public) must carry, and the
//! rule that an API reachable from other machines is not served open.
//!
//! The token is compared as SHA-256 digests in constant time
//! ([`subtle`]), so neither its bytes nor its length show in the time a
//! refusal takes. It never appears in a log line, an error or `Debug`.
//!
//! ```
//! use hearsay_agent::http::{ApiConfig, Token};
//! let mut api = ApiConfig::default();
//! api.token = Some(Token::new("s3cret-token-of-the-cluster").unwrap());
//! // A token makes any bind address acceptable; without one only loopback is.
//! assert!(api.validate("0.0.0.0:8946".parse().unwrap()).is_ok());
//! assert!(ApiConfig::default().validate("0.0.0.0:8946".parse().unwrap()).is_err());
//! ```

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use subtle::ConstantTimeEq;

/// The environment variable that holds the token itself (for the agent and
/// its clients alike).
pub const TOKEN_ENV: &str = "HEARSAY_HTTP_TOKEN";

/// Where a token came from, to name it in errors and warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// This file ([`Token::from_file`]).
    File(PathBuf),
    /// [`TOKEN_ENV`].
    Env,
    /// Given to [`Token::new`] by the program.
    Given,
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::File(p) => write!(f, "the token file {}", p.display()),
            TokenSource::Env => write!(f, "{TOKEN_ENV}"),
            TokenSource::Given => write!(f, "the token"),
        }
    }
}

/// Why a token cannot be had. Nothing changed: no token was set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read the token file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The token is empty (from a file or [`TOKEN_ENV`]: after trimming
    /// whitespace).
    #[error(
        "{0} is empty: a token is needed (any string of printable characters; `hearsay keys generate` makes a good one)"
    )]
    Empty(TokenSource),
    /// Only printable ASCII without spaces fits an `Authorization` header.
    #[error(
        "{0} holds a character a bearer token cannot carry: use printable ASCII without spaces"
    )]
    BadChar(TokenSource),
}

/// A bearer token. Its `Debug` shows no part of it.
#[derive(Clone)]
pub struct Token {
    secret: String,
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Token {
    /// A token as given (not trimmed): refused when empty or when it holds
    /// a character an HTTP header cannot carry.
    pub fn new(secret: &str) -> Result<Token, TokenError> {
        Token::checked(secret, TokenSource::Given)
    }

    fn checked(secret: &str, from: TokenSource) -> Result<Token, TokenError> {
        if secret.is_empty() {
            return Err(TokenError::Empty(from));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadChar(from));
        }
        Ok(Token {
            secret: secret.to_string(),
            digest: digest(secret.as_bytes()),
        })
    }

    /// The file's contents, trimmed (a trailing newline is not part of it).
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Token::checked(text.trim(), TokenSource::File(path.to_path_buf()))
    }

    /// [`TOKEN_ENV`], trimmed; `Ok(None)` when it is not set. Set but empty
    /// is an error: whoever set it meant a token.
    pub fn from_env() -> Result<Option<Token>, TokenError> {
        match std::env::var_os(TOKEN_ENV) {
            None => Ok(None),
            Some(v) => {
                let v = v
                    .into_string()
                    .map_err(|_| TokenError::BadChar(TokenSource::Env))?;
                Token::checked(v.trim(), TokenSource::Env).map(Some)
            }
        }
    }

    /// The token itself, for a client to send. Do not log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether `presented` is this token, in time that depends on neither.
    pub fn matches(&self, presented: &[u8]) -> bool {
        digest(presented).ct_eq(&self.digest).into()
    }
}

/// The permission bits of a token file that group or others may read
/// (`Some(mode)`): worth a warning, not a refusal. `None` when only the
/// owner can, or where there are no such bits.
pub fn readable_by_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o044 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Who may call the API built by [`super::router`]. `Default`: no token,
/// `/metrics` behind it when there is one, loopback only.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ApiConfig {
    /// Required as `Authorization: Bearer TOKEN` on every call but
    /// `/health` (and `/metrics` when `metrics_public`). None: the API is
    /// open to whoever reaches it.
    pub token: Option<Token>,
    /// Serve `/metrics` without the token (a scraper without credentials).
    pub metrics_public: bool,
    /// Accept an open API (no token) on an address other machines can
    /// reach. Refused by [`ApiConfig::validate`] otherwise.
    pub insecure: bool,
}

/// Why an API configuration is refused before anything is bound.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No token, not `insecure`, and this bind address is not loopback.
    #[error(
        "the HTTP API on {0} would be open to anyone who reaches it (read the map, broadcast, change the cluster's keys): set a token, bind a loopback address, or allow it explicitly (insecure)"
    )]
    OpenBeyondLoopback(SocketAddr),
}

impl ApiConfig {
    /// Refuses an API without a token on anything but a loopback address
    /// (0.0.0.0 and :: included), unless `insecure`.
    pub fn validate(&self, bind: SocketAddr) -> Result<(), ApiError> {
        if self.token.is_none() && !self.insecure && !bind.ip().is_loopback() {
            return Err(ApiError::OpenBeyondLoopback(bind));
        }
        Ok(())
    }

    /// Whether `path` is served without the token.
    pub fn is_public(&self, path: &str) -> bool {
        path == "/health" || (self.metrics_public && path == "/metrics")
    }
}

/// What an `Authorization` header says about a request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Missing,
    Wrong,
}

/// The API's gatekeeper: the configuration and what it refused.
#[derive(Debug)]
pub(crate) struct Guard {
    pub(crate) cfg: ApiConfig,
    /// Calls answered 401 (shown on /metrics).
    pub(crate) refused: AtomicU64,
}

impl Guard {
    pub(crate) fn new(cfg: ApiConfig) -> Guard {
        Guard {
            cfg,
            refused: AtomicU64::new(0),
        }
    }

    fn verdict(&self, path: &str, headers: &HeaderMap) -> Verdict {
        let Some(token) = &self.cfg.token else {
            return Verdict::Allowed;
        };
        if self.cfg.is_public(path) {
            return Verdict::Allowed;
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Verdict::Missing;
        };
        // RFC 7235: the scheme is case-insensitive; one space, then the token.
        let value = value.as_bytes();
        let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
            Some(i) => (&value[..i], &value[i + 1..]),
            None => (value, &b""[..]),
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Verdict::Missing;
        }
        let presented = rest.trim_ascii();
        if presented.is_empty() {
            return Verdict::Missing;
        }
        if token.matches(presented) {
            Verdict::Allowed
        } else {
            Verdict::Wrong
        }
    }
}

/// The middleware: passes allowed calls on, answers the others 401 with
/// a `WWW-Authenticate: Bearer` challenge and a short JSON error.
pub(crate) async fn check(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let (challenge, error) = match g.verdict(req.uri().path(), req.headers()) {
        Verdict::Allowed => return next.run(req).await,
        Verdict::Missing => (
            r#"Bearer realm="hearsay""#,
            "a bearer token is required (Authorization: Bearer TOKEN)",
        ),
        Verdict::Wrong => (
            r#"Bearer realm="hearsay", error="invalid_token""#,
            "the bearer token is not this agent's",
        ),
    };
    g.refused.fetch_add(1, Ordering::Relaxed);
    // The path and method only: the header's value is never logged.
    tracing::debug!(method = %req.method(), path = req.uri().path(), "HTTP call refused: {error}");
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )],
        axum::Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(metrics_public: bool) -> Guard {
        Guard::new(ApiConfig {
            token: Some(Token::new("right-token").unwrap()),
            metrics_public,
            insecure: false,
        })
    }

    fn auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn only_the_right_bearer_token_passes_and_health_needs_none() {
        let g = guard(false);
        let none = HeaderMap::new();
        assert_eq!(g.verdict("/members", &none), Verdict::Missing);
        assert_eq!(
            g.verdict("/members", &auth("Bearer right-token")),
            Verdict::Allowed
        );
        // The scheme is case-insensitive (RFC 7235 §2.1); spaces around the token are not part of it.
        assert_eq!(
            g.verdict("/kv", &auth("bearer  right-token ")),
            Verdict::Allowed
        );
        assert_eq!(
            g.verdict("/kv", &auth("Bearer right-tokeN")),
            Verdict::Wrong
        );
        assert_eq!(
            g.verdict("/kv", &auth("Bearer right-token-and-more")),
            Verdict::Wrong
        );
        assert_eq!(g.verdict("/kv", &auth("Bearer ")), Verdict::Missing);
        assert_eq!(
            g.verdict("/kv", &auth("Basic cmlnaHQtdG9rZW4=")),
            Verdict::Missing
        );
        assert_eq!(g.verdict("/kv", &auth("right-token")), Verdict::Missing);
        assert_eq!(g.verdict("/health", &none), Verdict::Allowed);
        // Not a prefix match: only the exact public paths.
        assert_eq!(g.verdict("/health/../members", &none), Verdict::Missing);
        assert_eq!(g.verdict("/metrics", &none), Verdict::Missing);
        assert_eq!(guard(true).verdict("/metrics", &none), Verdict::Allowed);
        assert_eq!(guard(true).verdict("/members", &none), Verdict::Missing);
        // No token configured: everything is open, as before.
        let open = Guard::new(ApiConfig::default());
        assert_eq!(open.verdict("/members", &none), Verdict::Allowed);
    }

    #[test]
    fn an_open_api_is_refused_beyond_loopback_unless_insecure() {
        let open = ApiConfig::default();
        for ok in ["127.0.0.1:8946", "127.0.0.2:1", "[::1]:8946"] {
            assert_eq!(open.validate(ok.parse().unwrap()), Ok(()), "{ok}");
        }
        for bad in ["0.0.0.0:8946", "[::]:8946", "10.0.0.1:8946"] {
            let a: SocketAddr = bad.parse().unwrap();
            assert_eq!(open.validate(a), Err(ApiError::OpenBeyondLoopback(a)));
        }
        let insecure = ApiConfig {
            insecure: true,
            ..ApiConfig::default()
        };
        assert_eq!(insecure.validate("0.0.0.0:1".parse().unwrap()), Ok(()));
        assert_eq!(
            guard(false).cfg.validate("0.0.0.0:1".parse().unwrap()),
            Ok(())
        );
    }

    #[test]
    fn token_files_are_trimmed_and_empty_or_unreadable_ones_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("hearsay-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "  abc.DEF-123\n").unwrap();
        let t = Token::from_file(&f).unwrap();
        assert_eq!(t.secret(), "abc.DEF-123");
        assert!(t.matches(b"abc.DEF-123") && !t.matches(b"abc.DEF-12"));
        assert_eq!(format!("{t:?}"), "Token(..)");
        std::fs::write(&f, " \n\n").unwrap();
        let e = Token::from_file(&f).unwrap_err().to_string();
        assert!(
            e.contains(&f.display().to_string()) && e.contains("empty"),
            "{e}"
        );
        std::fs::write(&f, "two words\n").unwrap();
        let e = Token::from_file(&f).unwrap_err().to_string();
        assert!(e.contains("printable ASCII"), "{e}");
        let missing = dir.join("missing");
        let e = Token::from_file(&missing).unwrap_err().to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&f, "x").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(readable_by_others(&f), None);
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert_eq!(readable_by_others(&f), Some(0o640));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
