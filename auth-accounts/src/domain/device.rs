//! A readable device name from a User-Agent ("Chrome on Windows"), like the old service's
//! `user_agents` output. Deliberately small: the name is for people looking at their session list,
//! not for security decisions.

pub(crate) fn device_name(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|s| !s.is_empty()) else {
        return "Unknown device".to_string();
    };
    let browser = browser(ua);
    let os = os(ua);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        (None, Some(o)) => format!("Unknown browser on {o}"),
        (None, None) => {
            // A CLI or library: show its product token, bounded so a huge header stays small.
            let product: String = ua
                .split([' ', '/'])
                .next()
                .unwrap_or(ua)
                .chars()
                .take(40)
                .collect();
            product
        }
    }
}

fn browser(ua: &str) -> Option<&'static str> {
    // Order matters: Edge and Opera also claim to be Chrome; Chrome also claims to be Safari.
    let table: [(&str, &str); 9] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("YaBrowser/", "Yandex Browser"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    table
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, name)| *name)
}

fn os(ua: &str) -> Option<&'static str> {
    let table: [(&str, &str); 8] = [
        ("Windows", "Windows"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ];
    table
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_agents() {
        let chrome_win = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(device_name(Some(chrome_win)), "Chrome on Windows");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0";
        assert_eq!(device_name(Some(edge)), "Edge on Windows");
        let safari_ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device_name(Some(safari_ios)), "Safari on iOS");
        let firefox_linux =
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        assert_eq!(device_name(Some(firefox_linux)), "Firefox on Linux");
        let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
        assert_eq!(device_name(Some(android)), "Chrome on Android");
        assert_eq!(device_name(Some("curl/8.5.0")), "curl");
        assert_eq!(device_name(None), "Unknown device");
        assert_eq!(device_name(Some(&"x".repeat(1000))).len(), 40);
    }
}
