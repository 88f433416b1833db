//! The callback-URL allow-list (docs/api.md §5.6): origins compare by scheme, ASCII host and
//! effective port, so `https://a.com:443` is `https://a.com` and `ü.example` is its punycode.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: one or more labels in front of `example.com`, never the bare domain.
    AnySubdomainOf(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
}

/// One entry of `ALLOWED_CALLBACK_URLS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Why a callback URL was refused.
pub enum CallbackError {
    /// Not an absolute http(s) URL: a schema error.
    #[error("callback_url must be an absolute http or https URL")]
    NotHttpUrl,
    /// A valid URL that the allow-list does not admit.
    #[error("callback_url is not allowed")]
    NotAllowed,
}

impl OriginPattern {
    /// Parses an entry such as `https://app.example.com`, `https://*.example.com` or
    /// `http://localhost:*`.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or("must look like https://host[:port]")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err("scheme must be http or https"),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err("must be an origin, without path, query or user-info");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
        };
        let port = match port {
            None => PortPattern::Exact(default_port),
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(p.parse().map_err(|_| "port must be a number or *")?),
        };
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(h) => (true, h),
            None => (false, host),
        };
        // Let the URL parser normalize the host exactly as it will normalize callback URLs.
        let parsed = Url::parse(&format!("{scheme}://{host}/")).map_err(|_| "invalid host")?;
        let host = parsed.host_str().ok_or("invalid host")?.to_owned();
        if host.contains('*') {
            return Err("'*' is only allowed as the first label");
        }
        Ok(OriginPattern {
            scheme,
            host: if wildcard {
                HostPattern::AnySubdomainOf(host)
            } else {
                HostPattern::Exact(host)
            },
            port,
        })
    }

    fn admits(&self, url: &Url) -> bool {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host_ok = match &self.host {
            HostPattern::Exact(h) => host == h,
            HostPattern::AnySubdomainOf(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|front| front.len() > 1 && front.ends_with('.')),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == port,
        };
        self.scheme == url.scheme() && host_ok && port_ok
    }
}

/// A callback URL as a request names it: an absolute `http`/`https` URL with a host. Whether
/// the allow-list admits it is a separate question, asked later in the contract's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(Url);

impl CallbackUrl {
    /// Parses an absolute http(s) URL; anything else is [`CallbackError::NotHttpUrl`].
    pub fn parse(raw: &str) -> Result<Self, CallbackError> {
        let url = Url::parse(raw).map_err(|_| CallbackError::NotHttpUrl)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(CallbackError::NotHttpUrl);
        }
        Ok(CallbackUrl(url))
    }

    /// True when an entry of the allow-list admits this URL's origin. A URL with user-info is
    /// never admitted (`https://app.example.com@evil.example` must not pass for the former).
    pub fn allowed_by(&self, allowed: &[OriginPattern]) -> bool {
        let url = &self.0;
        url.username().is_empty()
            && url.password().is_none()
            && allowed.iter().any(|p| p.admits(url))
    }

    /// The URL as given (normalized by the URL parser).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The URL with `code=<token>` in its query: other parameters are kept verbatim (not
    /// re-encoded) and any existing `code` parameter is replaced.
    pub fn with_code(&self, token: &str) -> String {
        let mut url = self.0.clone();
        let mut kept: Vec<&str> = self
            .0
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or_default();
                !pair.is_empty() && name != "code" && name != "cod%65"
            })
            .collect();
        let code_pair = format!("code={token}");
        kept.push(&code_pair);
        url.set_query(Some(&kept.join("&")));
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &[&str]) -> Vec<OriginPattern> {
        list.iter()
            .map(|s| OriginPattern::parse(s).unwrap())
            .collect()
    }

    fn verdict(url: &str, list: &[&str]) -> Result<(), CallbackError> {
        let url = CallbackUrl::parse(url)?;
        if url.allowed_by(&allow(list)) {
            Ok(())
        } else {
            Err(CallbackError::NotAllowed)
        }
    }

    #[test]
    fn exact_origin_matches_with_and_without_default_port() {
        let list = ["https://app.example.com"];
        assert!(verdict("https://app.example.com/verify?x=1", &list).is_ok());
        assert!(verdict("https://APP.example.com:443/verify", &list).is_ok());
        assert!(verdict("https://a.com/", &["https://a.com:443"]).is_ok());
        assert_eq!(
            verdict("http://app.example.com/", &list),
            Err(CallbackError::NotAllowed)
        );
        assert_eq!(
            verdict("https://app.example.com:8443/", &list),
            Err(CallbackError::NotAllowed)
        );
    }

    #[test]
    fn wildcard_matches_subdomains_but_not_the_bare_domain() {
        let list = ["https://*.example.com"];
        assert!(verdict("https://a.example.com/", &list).is_ok());
        assert!(verdict("https://a.b.example.com/", &list).is_ok());
        assert_eq!(
            verdict("https://example.com/", &list),
            Err(CallbackError::NotAllowed)
        );
        assert_eq!(
            verdict("https://evilexample.com/", &list),
            Err(CallbackError::NotAllowed)
        );
        assert_eq!(
            verdict("https://example.com.evil.org/", &list),
            Err(CallbackError::NotAllowed)
        );
    }

    #[test]
    fn any_port_pattern_accepts_every_port_and_none() {
        let list = ["http://localhost:*"];
        assert!(verdict("http://localhost/", &list).is_ok());
        assert!(verdict("http://localhost:5173/cb", &list).is_ok());
        assert_eq!(
            verdict("https://localhost:5173/", &list),
            Err(CallbackError::NotAllowed)
        );
    }

    #[test]
    fn user_info_and_other_schemes_are_refused() {
        let list = ["https://app.example.com"];
        assert_eq!(
            verdict("https://user@app.example.com/", &list),
            Err(CallbackError::NotAllowed)
        );
        assert_eq!(
            verdict("https://app.example.com@evil.com/", &list),
            Err(CallbackError::NotAllowed)
        );
        assert_eq!(
            verdict("javascript:alert(1)", &list),
            Err(CallbackError::NotHttpUrl)
        );
        assert_eq!(verdict("/relative", &list), Err(CallbackError::NotHttpUrl));
        assert_eq!(
            verdict("ftp://app.example.com/", &list),
            Err(CallbackError::NotHttpUrl)
        );
    }

    #[test]
    fn internationalized_hosts_compare_in_punycode() {
        assert!(verdict("https://xn--tda.example/", &["https://ü.example"]).is_ok());
        assert!(verdict("https://ü.example/", &["https://xn--tda.example"]).is_ok());
    }

    #[test]
    fn link_keeps_other_parameters_verbatim_and_replaces_code() {
        let url =
            CallbackUrl::parse("https://app.example.com/v?a=%2F&code=old&b=x+y#frag").unwrap();
        let link = url.with_code("TOKEN");
        assert_eq!(
            link,
            "https://app.example.com/v?a=%2F&b=x+y&code=TOKEN#frag"
        );
        let bare = CallbackUrl::parse("https://app.example.com/v").unwrap();
        assert_eq!(bare.with_code("T"), "https://app.example.com/v?code=T");
    }
}
