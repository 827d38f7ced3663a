//! Signed tenant context: tokens an injected query cannot forge.
//!
//! A gateway (a role granted `issue_token`) signs a short-lived token for one
//! tenant; the application role can only present it. Two formats share the
//! keys of `tenancy.signing_keys` (HMAC-SHA256):
//! - tenancy tokens: `tn1.<kid>.<tenant id, base64url>.<expiry, unix seconds>.<signature, base64url>`
//! - JWTs (HS256) from an auth server sharing a key, also through PostgREST.

use crate::api::context;
use crate::api::keys::{keys, usable_key};
use crate::catalog;
use crate::error::{required, TenancyError::*};
use crate::postgres::gucs;
use crate::postgres::system::unix_now;
use crate::signature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use pgrx::prelude::*;
use serde_json::Value;
use uuid::Uuid;

/// A signed token for an active tenant, valid for `ttl` (for a gateway role).
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn issue_token(
    identifier: Option<&str>,
    ttl: default!(Option<pgrx::datum::Interval>, "'5 minutes'"),
) -> String {
    let identifier = required(identifier, "identifier");
    let ttl = required(ttl, "ttl");
    let seconds = interval_seconds(ttl);
    if seconds <= 0 {
        InvalidValue(
            format!("token lifetime must be positive, not {ttl}"),
            "Pass an interval such as '15 minutes'.".into(),
        )
        .raise();
    }
    let longest = gucs::token_max_lifetime();
    if seconds > longest {
        InvalidValue(
            format!("token lifetime {ttl} is longer than tenancy.token_max_lifetime ({longest} s)"),
            "Tokens are for one request or a short session: issue a new one when it expires \
             (the default lifetime is 5 minutes)."
                .into(),
        )
        .raise();
    }
    let tenant = catalog::find_by_identifier(identifier)
        .unwrap_or_else(|| UnknownTenant(identifier.into()).raise());
    if !tenant.is_active() {
        TenantNotActive(tenant.identifier.clone(), tenant.status).raise();
    }
    let (keys, newest) = keys();
    let kid = newest.unwrap_or_else(|| {
        NotConfigured(
            "there is no active signing key".into(),
            "Add one with SELECT tenancy.add_signing_key('k1');".into(),
        )
        .raise()
    });
    let payload = format!(
        "tn1.{kid}.{}.{}",
        B64.encode(tenant.id.as_bytes()),
        unix_now() + seconds
    );
    let signature = signature::sign(&keys[&kid].secret, payload.as_bytes());
    format!("{payload}.{}", B64.encode(signature))
}

/// `set_tenant_token(token)`: for the session (see `set_tenant_for_session`).
#[pg_extern(volatile, parallel_unsafe, name = "set_tenant_token")]
fn set_tenant_token_for_session(token: Option<&str>) -> pgrx::Uuid {
    set_tenant_token(token, Some(false))
}

/// `set_tenant_jwt(jwt)`: for the session (see `set_tenant_for_session`).
#[pg_extern(volatile, parallel_unsafe, name = "set_tenant_jwt")]
fn set_tenant_jwt_for_session(jwt: Option<&str>) -> pgrx::Uuid {
    set_tenant_jwt(jwt, Some(false))
}

/// Verify a tenancy token (signature in constant time, expiry, key not
/// retired), then set its tenant as the context exactly like `set_tenant`.
#[pg_extern(volatile, parallel_unsafe)]
fn set_tenant_token(token: Option<&str>, is_local: Option<bool>) -> pgrx::Uuid {
    let token = required(token, "token");
    let local = required(is_local, "is_local");
    let id = verify_token(token)
        .unwrap_or_else(|reason| context::refuse("(token)", InvalidToken(reason)));
    context::enter(&id.to_string(), local, || catalog::find_by_id(id))
}

/// Verify a JWT (HS256 only; `exp` required, `nbf` honoured) signed with one
/// of the signing keys (its `kid` header, else any active key), and set the
/// tenant named by the `tenancy.jwt_claim` claim (an identifier or an id).
#[pg_extern(volatile, parallel_unsafe)]
fn set_tenant_jwt(jwt: Option<&str>, is_local: Option<bool>) -> pgrx::Uuid {
    let jwt = required(jwt, "jwt");
    let local = required(is_local, "is_local");
    let claims =
        verify_jwt(jwt).unwrap_or_else(|reason| context::refuse("(jwt)", InvalidToken(reason)));
    let tenant = claims.tenant;
    // Ids are never reused; identifiers are once a tenant is destroyed, and
    // no identifier has the form of an id. A JWT naming an identifier must not
    // be older than the tenant (in whole seconds, as iat usually is); when a
    // destroy freed the identifier before, it must be younger than the
    // registration to the microsecond (a registration waits for a destroy in
    // progress), so that one issued for the destroyed tenant does not open
    // its successor, even within the same second.
    match Uuid::try_parse(&tenant) {
        Ok(id) => context::enter(&tenant, local, || catalog::find_by_id(id)),
        Err(_) => context::enter(&tenant, local, || {
            let found = catalog::find_by_identifier(&tenant)?;
            let refused = |why: String| context::refuse("(jwt)", InvalidToken(why));
            match claims.issued_at {
                None => {
                    refused("a JWT that names a tenant by identifier needs an iat claim".into())
                }
                // (The freed identifiers are read only for such a JWT, not
                // with every tenant the cache loads.)
                Some(iat)
                    if iat <= found.created_at && catalog::identifier_freed(&found.identifier) =>
                {
                    refused(format!(
                    "the JWT was issued before tenant \"{tenant}\" was registered, for a tenant \
                     destroyed earlier under the same identifier"
                ))
                }
                Some(iat) if iat < found.created_at / 1_000_000 * 1_000_000 => refused(format!(
                    "the JWT was issued before tenant \"{tenant}\" was registered"
                )),
                Some(_) => Some(found),
            }
        }),
    }
}

/// PostgREST `db-pre-request`: sets the request's tenant (transaction scope)
/// from the JWT of its Authorization header, verified here with the signing
/// keys, so a forged `request.jwt.claims` setting cannot choose a tenant.
/// Without the header the request runs without a tenant (no rows).
#[pg_extern(volatile, parallel_unsafe)]
fn postgrest_pre_request() {
    // No header (or no headers): no tenant for this request, whatever an
    // earlier request of the session set.
    let Some(headers) = gucs::setting(c"request.headers") else {
        return context::clear_for_request();
    };
    let headers: Value = serde_json::from_str(&headers).unwrap_or_else(|_| {
        context::refuse("(jwt)", InvalidToken("request.headers is not JSON".into()))
    });
    let Some(auth) = headers.get("authorization").and_then(Value::as_str) else {
        return context::clear_for_request();
    };
    let Some(jwt) = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
    else {
        context::refuse(
            "(jwt)",
            InvalidToken("the Authorization header is not a bearer token".into()),
        )
    };
    set_tenant_jwt(Some(jwt.trim()), Some(true));
}

fn verify_token(token: &str) -> Result<Uuid, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [version, kid, tenant, expiry, signature] = parts[..] else {
        return Err("malformed token".into());
    };
    if version != "tn1" {
        return Err("malformed token".into());
    }
    let signature = B64
        .decode(signature)
        .map_err(|_| "malformed token".to_string())?;
    let key = usable_key(kid)?;
    let signed = &token[..token.len() - parts[4].len() - 1];
    verify(&key, signed.as_bytes(), &signature)?;
    // Signed, so the fields are the issuer's: parse them.
    let expiry: i64 = expiry.parse().map_err(|_| "malformed token".to_string())?;
    let now = unix_now();
    if expiry <= now {
        return Err("the token has expired".into());
    }
    // Issued for longer than the setting allows now (by an earlier version,
    // or before the setting was lowered): refused, however it is signed.
    if expiry - now > gucs::token_max_lifetime() {
        return Err("the token lives longer than tenancy.token_max_lifetime".into());
    }
    let id = B64
        .decode(tenant)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok());
    id.ok_or_else(|| "malformed token".into())
}

/// A JWT's header: the fields this verification reads (others are ignored).
#[derive(serde::Deserialize)]
struct JwtHeader {
    alg: Option<String>,
    /// Left as a JSON value to refuse a kid that is not a string.
    kid: Option<Value>,
}

/// What a verified JWT says: the tenant claim, and when it was issued.
#[derive(Debug)]
struct JwtClaims {
    tenant: String,
    issued_at: Option<i64>,
}

/// Seconds an auth server's clock may be ahead of the database's.
const JWT_CLOCK_SKEW: f64 = 60.0;

fn verify_jwt(jwt: &str) -> Result<JwtClaims, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("malformed JWT".into());
    };
    fn decode<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, String> {
        let bytes = B64.decode(part).map_err(|_| "malformed JWT".to_string())?;
        serde_json::from_slice(&bytes).map_err(|_| "malformed JWT".into())
    }
    let header: JwtHeader = decode(header)?;
    match header.alg.as_deref() {
        Some("HS256") => {}
        Some(alg) => {
            return Err(format!(
                "JWT algorithm {alg:?} is not accepted (only HS256)"
            ))
        }
        None => return Err("the JWT header has no algorithm".into()),
    }
    let signature = B64
        .decode(signature)
        .map_err(|_| "malformed JWT".to_string())?;
    let signed = format!("{}.{}", parts[0], parts[1]);
    match &header.kid {
        Some(Value::String(kid)) => verify(&usable_key(kid)?, signed.as_bytes(), &signature)?,
        Some(_) => return Err("the JWT's kid header is not a string".into()),
        None => {
            let (keys, _) = keys();
            let matches = keys
                .values()
                .filter(|k| !k.retired)
                .any(|k| verify(&k.secret, signed.as_bytes(), &signature).is_ok());
            if !matches {
                return Err("the signature does not match any active key".into());
            }
        }
    }
    // The claims stay a JSON object: the tenant claim's name is a setting.
    let claims: Value = decode(payload)?;
    let now = unix_now() as f64;
    // Time claims are NumericDate: a claim of another type is refused, never ignored.
    let time = |name: &str| -> Result<Option<f64>, String> {
        match claims.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("the JWT's {name} claim is not a number")),
        }
    };
    match time("exp")? {
        Some(exp) if exp > now => {}
        Some(_) => return Err("the JWT has expired".into()),
        None => return Err("the JWT has no exp claim".into()),
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now) {
        return Err("the JWT is not valid yet (nbf)".into());
    }
    // An iat in the future would pass the registration check below for a
    // tenant registered later (and stretch the lifetime check): allow only
    // a minute of clock difference with the auth server.
    if time("iat")?.is_some_and(|iat| iat > now + JWT_CLOCK_SKEW) {
        return Err("the JWT was issued in the future (iat)".into());
    }
    // Microseconds, like the registration time it is compared with.
    let issued_at = time("iat")?.map(|iat| (iat * 1e6).floor() as i64);
    let max_lifetime = gucs::jwt_max_lifetime() as f64;
    if max_lifetime > 0.0 {
        let exp = time("exp")?.unwrap_or(0.0);
        let lifetime = exp - time("iat")?.unwrap_or(now);
        if lifetime > max_lifetime {
            return Err(format!(
                "the JWT lives {lifetime:.0} s, longer than tenancy.jwt_max_lifetime ({max_lifetime:.0} s)"
            ));
        }
    }
    if let Some(audience) = gucs::jwt_audience() {
        let matches = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&audience)),
            _ => false,
        };
        if !matches {
            return Err(format!("the JWT is not for audience {audience:?} (aud)"));
        }
    }
    if let Some(issuer) = gucs::jwt_issuer() {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(format!("the JWT was not issued by {issuer:?} (iss)"));
        }
    }
    let claim = gucs::jwt_claim();
    let tenant = claims
        .get(&claim)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("the JWT has no \"{claim}\" claim naming the tenant"))?;
    Ok(JwtClaims { tenant, issued_at })
}

/// Constant-time comparison of the expected and the presented signature.
fn verify(secret: &[u8], message: &[u8], signature: &[u8]) -> Result<(), String> {
    if signature::verify(secret, message, signature) {
        Ok(())
    } else {
        Err("the signature does not match".into())
    }
}

fn interval_seconds(interval: pgrx::datum::Interval) -> i64 {
    // Months count as 30 days, as PostgreSQL's own interval arithmetic does.
    (interval.months() as i64 * 30 + interval.days() as i64) * 86_400
        + interval.micros() / 1_000_000
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [0x11; 32];

    fn setup() -> Uuid {
        Spi::run("SELECT tenancy.add_signing_key('t1', decode(repeat('11', 32), 'hex'))").unwrap();
        let id =
            Spi::get_one::<pgrx::Uuid>("SELECT id FROM tenancy.register_tenant('tok-unit', 'T')")
                .unwrap()
                .unwrap();
        Uuid::from_bytes(*id.as_bytes())
    }

    fn token(kid: &str, id: Uuid, expiry: i64, secret: &[u8]) -> String {
        let payload = format!("tn1.{kid}.{}.{expiry}", B64.encode(id.as_bytes()));
        format!(
            "{payload}.{}",
            B64.encode(signature::sign(secret, payload.as_bytes()))
        )
    }

    fn jwt(header: &str, claims: &serde_json::Value, secret: &[u8]) -> String {
        let signed = format!("{}.{}", B64.encode(header), B64.encode(claims.to_string()));
        format!(
            "{signed}.{}",
            B64.encode(signature::sign(secret, signed.as_bytes()))
        )
    }

    #[pgrx::pg_test]
    fn tokens_verify_only_as_issued() {
        let id = setup();
        let later = unix_now() + 60;
        assert_eq!(verify_token(&token("t1", id, later, &SECRET)), Ok(id));
        let good = token("t1", id, later, &SECRET);
        let other = B64.encode(Uuid::from_u128(7).as_bytes());
        let tampered = good.replacen(&B64.encode(id.as_bytes()), &other, 1);
        assert!(verify_token(&tampered).unwrap_err().contains("signature"));
        let expired = token("t1", id, unix_now() - 10, &SECRET);
        assert!(verify_token(&expired).unwrap_err().contains("expired"));
        let wrong_key = token("t1", id, later, &[0x22; 32]);
        assert!(verify_token(&wrong_key).unwrap_err().contains("signature"));
        assert!(verify_token(&token("nope", id, later, &SECRET))
            .unwrap_err()
            .contains("unknown"));
        for malformed in ["", "tn1", "tn1.t1.x.1", "tn2.t1.x.1.y", "tn1.t1.x.1.!!"] {
            assert!(verify_token(malformed).is_err(), "{malformed:?}");
        }
    }

    #[pgrx::pg_test]
    fn jwts_verify_only_hs256_with_a_key() {
        let id = setup();
        let claims = serde_json::json!({"tenant": id.to_string(), "exp": unix_now() + 60});
        let good = jwt(r#"{"alg":"HS256","kid":"t1"}"#, &claims, &SECRET);
        assert_eq!(verify_jwt(&good).unwrap().tenant, id.to_string());
        let without_kid = jwt(r#"{"alg":"HS256"}"#, &claims, &SECRET);
        assert!(verify_jwt(&without_kid).is_ok());
        for alg in ["none", "RS256", "HS512"] {
            let confused = jwt(
                &format!(r#"{{"alg":"{alg}","kid":"t1"}}"#),
                &claims,
                &SECRET,
            );
            assert!(
                verify_jwt(&confused).unwrap_err().contains("not accepted"),
                "{alg}"
            );
        }
        let (signed, _) = good.rsplit_once('.').unwrap();
        let tampered = format!("{signed}.{}", B64.encode([0u8; 32]));
        assert!(verify_jwt(&tampered).unwrap_err().contains("signature"));
        let wrong_key = jwt(r#"{"alg":"HS256"}"#, &claims, &[0x22; 32]);
        assert!(verify_jwt(&wrong_key).is_err());
        let expired = serde_json::json!({"tenant": id.to_string(), "exp": unix_now() - 1});
        assert!(verify_jwt(&jwt(r#"{"alg":"HS256"}"#, &expired, &SECRET))
            .unwrap_err()
            .contains("expired"));
        let odd_kid = jwt(r#"{"alg":"HS256","kid":"t1\nLOG: x"}"#, &claims, &SECRET);
        assert_eq!(verify_jwt(&odd_kid).unwrap_err(), "malformed key id");
        assert!(verify_jwt("a.b").is_err());
    }
}
