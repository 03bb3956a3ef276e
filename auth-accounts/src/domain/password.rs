use super::Invalid;

/// A candidate password: 8 to 128 characters (Unicode scalar values), nothing else imposed
/// (OWASP ASVS 2.1: no composition rules). Never printed: `Debug` hides it.
#[derive(Clone)]
pub(crate) struct Password(String);

pub(super) const MIN_CHARS: usize = 8;
pub(super) const MAX_CHARS: usize = 128;

impl Password {
    pub(crate) fn parse(raw: &str) -> Result<Self, Invalid> {
        let n = raw.chars().count();
        if n < MIN_CHARS {
            return Err(Invalid(format!(
                "Password must be at least {MIN_CHARS} characters"
            )));
        }
        if n > MAX_CHARS {
            return Err(Invalid(format!(
                "Password must be at most {MAX_CHARS} characters"
            )));
        }
        if raw.contains('\0') {
            return Err(Invalid("Password must not contain NUL characters".into()));
        }
        Ok(Self(raw.to_string()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        // 8 Cyrillic letters are 16 bytes but 8 characters.
        assert!(Password::parse("пароль12").is_ok());
        assert!(Password::parse(&"я".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(Password::parse("abc\0defgh").is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pass").unwrap()),
            "Password(***)"
        );
    }
}
