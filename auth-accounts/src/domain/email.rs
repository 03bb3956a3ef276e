use super::Invalid;

/// A normalised email address: trimmed and lowercased as a whole, so `Bob@Example.com` and
/// `bob@example.com` are one account (the old service treated them as two).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Email(String);

impl Email {
    pub(crate) fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim().to_lowercase();
        let err = |why: &str| Err(Invalid(format!("Invalid email address: {why}")));
        if value.is_empty() {
            return err("empty");
        }
        if value.len() > 254 {
            return err("longer than 254 characters");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return err("missing @");
        };
        if local.is_empty() || local.len() > 64 {
            return err("bad local part");
        }
        if local.contains('@') || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return err("unexpected character");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return err("bad local part");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return err("domain needs a dot");
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !ok {
                return err("bad domain");
            }
        }
        Ok(Self(value))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            Email::parse("  Bob@Example.COM ").unwrap().as_str(),
            "bob@example.com"
        );
        assert_eq!(
            Email::parse("a.b+tag@sub.example.co").unwrap().as_str(),
            "a.b+tag@sub.example.co"
        );
        assert_eq!(
            Email::parse("иван@пример.рф").unwrap().as_str(),
            "иван@пример.рф"
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a@-example.com",
            "a@example..com",
            ".a@example.com",
            "a..b@example.com",
            "a@b@example.com",
            "a@example.com\n",
        ] {
            if bad == "a@example.com\n" {
                // Trailing whitespace is trimmed, so this one is fine.
                assert!(Email::parse(bad).is_ok());
                continue;
            }
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
    }
}
