//! Email templates, Russian and English, as text and HTML.
//!
//! The language is the user's stored preference or the request's `Accept-Language`; Russian is the
//! default, as the old service's emails were Russian.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ru => "ru",
            Self::En => "en",
        }
    }

    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "ru" => Some(Self::Ru),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The best supported language of an `Accept-Language` header, by q-value.
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let Some(header) = header else {
            return Self::Ru;
        };
        let mut best: Option<(f32, Self)> = None;
        for part in header.split(',').take(16) {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("");
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            if let Some(lang) = Self::parse(tag) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or(Self::Ru)
    }
}

#[derive(Clone, Debug)]
pub enum Template<'a> {
    Verification { link: &'a str },
    AlreadyRegistered { login_link: &'a str },
    Reset { link: &'a str },
    PasswordChanged,
}

impl Template<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Verification { .. } => "verification",
            Self::AlreadyRegistered { .. } => "already_registered",
            Self::Reset { .. } => "password_reset",
            Self::PasswordChanged => "password_changed",
        }
    }
}

pub(crate) struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(paragraphs: &[String], link: Option<(&str, &str)>) -> String {
    let mut body = String::from("<!doctype html><html><body style=\"font-family:sans-serif\">");
    for p in paragraphs {
        body.push_str(&format!("<p>{}</p>", escape(p)));
    }
    if let Some((label, href)) = link {
        body.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(href),
            escape(label)
        ));
    }
    body.push_str("</body></html>");
    body
}

pub(crate) fn render(template: &Template<'_>, lang: Lang, ttl_minutes: i64) -> Rendered {
    use Lang::*;
    let (subject, lines, link): (&str, Vec<String>, Option<(&str, &str)>) = match (template, lang) {
        (Template::Verification { link }, Ru) => (
            "Подтверждение email",
            vec![
                "Здравствуйте!".into(),
                format!("Чтобы завершить регистрацию, перейдите по ссылке (действует {ttl_minutes} минут):"),
                "Если вы не регистрировались, просто проигнорируйте это письмо.".into(),
            ],
            Some(("Завершить регистрацию", link)),
        ),
        (Template::Verification { link }, En) => (
            "Confirm your email",
            vec![
                "Hello!".into(),
                format!("To finish signing up, open this link (valid for {ttl_minutes} minutes):"),
                "If you did not sign up, ignore this email.".into(),
            ],
            Some(("Finish signing up", link)),
        ),
        (Template::AlreadyRegistered { login_link }, Ru) => (
            "У вас уже есть аккаунт",
            vec![
                "Кто-то (возможно, вы) пытался зарегистрироваться с этим адресом, но аккаунт уже существует.".into(),
                "Забыли пароль? Восстановить его можно на странице входа.".into(),
            ],
            Some(("Войти", login_link)),
        ),
        (Template::AlreadyRegistered { login_link }, En) => (
            "You already have an account",
            vec![
                "Someone (maybe you) tried to sign up with this address, but an account already exists.".into(),
                "Forgot your password? You can reset it from the sign-in page.".into(),
            ],
            Some(("Sign in", login_link)),
        ),
        (Template::Reset { link }, Ru) => (
            "Восстановление пароля",
            vec![
                "Вы запросили сброс пароля.".into(),
                format!("Чтобы задать новый пароль, перейдите по ссылке (действует {ttl_minutes} минут):"),
                "Если вы не запрашивали сброс, проигнорируйте это письмо: пароль не изменится.".into(),
            ],
            Some(("Задать новый пароль", link)),
        ),
        (Template::Reset { link }, En) => (
            "Reset your password",
            vec![
                "You asked to reset your password.".into(),
                format!("To choose a new one, open this link (valid for {ttl_minutes} minutes):"),
                "If you did not ask for this, ignore this email: your password stays the same.".into(),
            ],
            Some(("Choose a new password", link)),
        ),
        (Template::PasswordChanged, Ru) => (
            "Пароль изменён",
            vec![
                "Пароль вашего аккаунта был изменён, все остальные сеансы завершены.".into(),
                "Если это были не вы, немедленно восстановите пароль.".into(),
            ],
            None,
        ),
        (Template::PasswordChanged, En) => (
            "Your password was changed",
            vec![
                "Your account's password was changed and your other sessions were signed out.".into(),
                "If this wasn't you, reset your password now.".into(),
            ],
            None,
        ),
    };
    let mut text = lines.join("\n\n");
    if let Some((_, href)) = link {
        text.push_str(&format!("\n\n{href}\n"));
    }
    Rendered {
        subject: subject.to_string(),
        html: html(&lines, link),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language() {
        assert_eq!(Lang::from_accept_language(None), Lang::Ru);
        assert_eq!(Lang::from_accept_language(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("de-DE, en;q=0.5, ru;q=0.8")),
            Lang::Ru
        );
        assert_eq!(Lang::from_accept_language(Some("fr")), Lang::Ru);
        assert_eq!(Lang::from_accept_language(Some("ru;q=0, en")), Lang::En);
    }

    #[test]
    fn templates_carry_the_link_and_escape_html() {
        let link = "http://localhost:3000/auth/registration?token=abc&email=a%40b.c";
        let r = render(&Template::Verification { link }, Lang::En, 15);
        assert!(r.text.contains(link));
        assert!(r.html.contains("token=abc&amp;email"));
        assert_eq!(r.subject, "Confirm your email");
        let r = render(&Template::PasswordChanged, Lang::Ru, 15);
        assert_eq!(r.subject, "Пароль изменён");
    }
}
