use super::Invalid;

fn bounded(raw: &str, what: &str, max: usize) -> Result<String, Invalid> {
    let value = raw.trim();
    let n = value.chars().count();
    if n == 0 {
        return Err(Invalid(format!("{what} must not be empty")));
    }
    if n > max {
        return Err(Invalid(format!("{what} must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(value.to_string())
}

/// A display name: 1..255 characters after trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name(String);

impl Name {
    pub(crate) fn parse(raw: &str) -> Result<Self, Invalid> {
        bounded(raw, "Name", 255).map(Self)
    }
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A country: 1..100 characters after trimming (the column is varchar(100); the old service let
/// longer values through and answered 500).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Country(String);

impl Country {
    pub(crate) fn parse(raw: &str) -> Result<Self, Invalid> {
        bounded(raw, "Country", 100).map(Self)
    }
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(Name::parse("  Иван  ").unwrap().as_str(), "Иван");
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"n".repeat(255)).is_ok());
        assert!(Name::parse(&"n".repeat(256)).is_err());
        assert!(Name::parse("a\u{7}b").is_err());
        assert!(Country::parse("Russia").is_ok());
        assert!(Country::parse(&"c".repeat(101)).is_err());
        assert!(Country::parse("").is_err());
    }
}
