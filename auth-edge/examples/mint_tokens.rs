//! Writes a fresh key and tokens for the benchmark (bench/edge.sh) or manual testing: nothing
//! here is ever used for real traffic.
//!
//! ```sh
//! cargo run --release -p auth-edge --example mint_tokens -- OUT_DIR COUNT [RS256|ES256|EdDSA]
//! ```
//!
//! Writes into OUT_DIR: `jwks.json` (public JWKS), `public.pem` (the public key as PEM, for
//! HAProxy), `token.txt` (one token) and `tokens.txt` (COUNT distinct tokens, one per line:
//! distinct users, sessions and ids, all valid for an hour, `iss`/`aud` as the edge's defaults).

use std::io::Write;
use std::path::PathBuf;

use auth_token::{sign, Algorithm, Claims, JwkSet, SigningKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(count)) = (args.next(), args.next()) else {
        return Err("usage: mint_tokens OUT_DIR COUNT [RS256|ES256|EdDSA]".into());
    };
    let dir = PathBuf::from(dir);
    let count: usize = count.parse()?;
    let alg: Algorithm = args.next().as_deref().unwrap_or("RS256").parse()?;
    std::fs::create_dir_all(&dir)?;

    let key = SigningKey::generate(alg)?;
    let jwks = JwkSet {
        keys: vec![key.public_jwk()],
    };
    std::fs::write(dir.join("jwks.json"), serde_json::to_string(&jwks)?)?;
    std::fs::write(dir.join("public.pem"), key.public_pem()?)?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let now = i64::try_from(now)?;
    let claims = |i: usize| -> Result<Claims, auth_token::Error> {
        Ok(Claims {
            sub: format!("00000000-0000-4000-8000-{i:012}").parse()?,
            sid: format!("10000000-0000-4000-8000-{i:012}").parse()?,
            role: auth_token::Role::Admin,
            iss: "auth-service".into(),
            aud: "smart-budget".into(),
            iat: now - 5,
            exp: now + 3600,
            jti: format!("20000000-0000-4000-8000-{i:012}"),
        })
    };
    std::fs::write(dir.join("token.txt"), sign(&claims(0)?, &key)? + "\n")?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("tokens.txt"))?);
    for i in 1..=count {
        writeln!(out, "{}", sign(&claims(i)?, &key)?)?;
    }
    out.flush()?;
    eprintln!("{count} {alg:?} tokens in {}", dir.display());
    Ok(())
}
