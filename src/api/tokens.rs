//! Signed tenant context: tokens an injected query cannot forge.
//!
//! A gateway (a role granted `issue_token`) signs a short-lived token for one
//! tenant; the application role can only present it. Two formats share the
//! keys of `tenancy.signing_keys` (HMAC-SHA256):
//! - tenancy tokens: `tn1.<kid>.<tenant id, base64url>.<expiry, unix seconds>.<signature, base64url>`
//! - JWTs (HS256) from an auth server sharing a key, also through PostgREST.

use crate::api::{audit, context};
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError::*};
use crate::postgres::system::unix_now;
use crate::postgres::{gucs, invalidation, security, system};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use pgrx::guc::GucSetting;
use pgrx::prelude::*;
use serde_json::{json, Value};
use sha2::Sha256;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

struct Key {
    secret: Vec<u8>,
    retired: bool,
}

/// kid → key.
type Keys = Rc<BTreeMap<String, Key>>;

thread_local! {
    /// Loaded on first use, dropped with the other caches on invalidation.
    static KEYS: RefCell<Option<(Keys, Option<String>)>> = const { RefCell::new(None) };
}

pub fn invalidate() {
    KEYS.with_borrow_mut(|k| *k = None);
}

/// Add a signing key: `secret` (at least 32 bytes) shared with an auth server,
/// or by default 32 random bytes. New tokens are signed with the newest key;
/// older keys keep verifying until retired. Returns the kid.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn add_signing_key(kid: Option<&str>, secret: default!(Option<&[u8]>, "NULL")) -> String {
    let kid = required(kid, "kid");
    if !kid_is_valid(kid) {
        InvalidValue(
            format!("invalid key id {kid:?}"),
            "A key id has 1 to 63 characters: lowercase letters, digits, '_' and '-'.".into(),
        )
        .raise();
    }
    let secret = match secret {
        Some(secret) if secret.len() >= 32 => secret.to_vec(),
        Some(secret) => InvalidValue(
            format!("a signing secret needs at least 32 bytes, not {}", secret.len()),
            "Use 32 random bytes or more, e.g. gen_random_bytes(32), or omit it to have one generated."
                .into(),
        )
        .raise(),
        None => random_secret(),
    };
    let role = security::current_role_name();
    catalog::as_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.signing_keys (kid, secret) VALUES ($1, $2)",
            &[kid.into(), secret.into()],
        )
        .or_raise("a statement");
        audit::record(&role, "key", None, json!({"kid": kid, "event": "added"}));
    });
    kid.to_string()
}

/// Stop accepting tokens signed with `kid`.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn retire_signing_key(kid: Option<&str>) {
    let kid = required(kid, "kid");
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let found = Spi::get_one_with_args::<bool>(
            "WITH k AS (UPDATE tenancy.signing_keys SET retired_at = coalesce(retired_at, clock_timestamp()) \
             WHERE kid = $1 RETURNING 1) SELECT count(*) > 0 FROM k",
            &[kid.into()],
        )
        .or_raise("a statement")
        .unwrap_or(false);
        if !found {
            UndefinedObject(
                format!("signing key {kid:?} does not exist"),
                "List the keys with SELECT kid, created_at, retired_at FROM tenancy.signing_keys."
                    .into(),
            )
            .raise();
        }
        audit::record(&role, "key", None, json!({"kid": kid, "event": "retired"}));
    })
}

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
    let tenant = catalog::find_by_identifier(identifier)
        .unwrap_or_else(|| UnknownTenant(identifier.into()).raise());
    if !tenant.is_active() {
        TenantNotActive(tenant.identifier.clone(), tenant.status.clone()).raise();
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
    let signature = sign(&keys[&kid].secret, payload.as_bytes());
    format!("{payload}.{}", B64.encode(signature))
}

/// Verify a tenancy token (signature in constant time, expiry, key not
/// retired), then set its tenant as the context exactly like `set_tenant`.
#[pg_extern(volatile, parallel_unsafe)]
fn set_tenant_token(token: Option<&str>, is_local: default!(Option<bool>, false)) -> pgrx::Uuid {
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
fn set_tenant_jwt(jwt: Option<&str>, is_local: default!(Option<bool>, false)) -> pgrx::Uuid {
    let jwt = required(jwt, "jwt");
    let local = required(is_local, "is_local");
    let claims =
        verify_jwt(jwt).unwrap_or_else(|reason| context::refuse("(jwt)", InvalidToken(reason)));
    let tenant = claims.tenant;
    // Ids are never reused; identifiers are once a tenant is destroyed, and
    // no identifier has the form of an id. A JWT naming an identifier must
    // not be older than the tenant: one issued for a destroyed tenant does not
    // open the tenant registered later under the same identifier.
    match Uuid::try_parse(&tenant) {
        Ok(id) => context::enter(&tenant, local, || catalog::find_by_id(id)),
        Err(_) => context::enter(&tenant, local, || {
            let found = catalog::find_by_identifier(&tenant)?;
            match claims.issued_at {
                Some(iat) if iat >= found.created_at => Some(found),
                Some(_) => context::refuse(
                    "(jwt)",
                    InvalidToken(format!(
                        "the JWT was issued before tenant \"{tenant}\" was registered"
                    )),
                ),
                None => context::refuse(
                    "(jwt)",
                    InvalidToken(
                        "a JWT that names a tenant by identifier needs an iat claim".into(),
                    ),
                ),
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
    if expiry <= unix_now() {
        return Err("the token has expired".into());
    }
    let id = B64
        .decode(tenant)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok());
    id.ok_or_else(|| "malformed token".into())
}

/// What a verified JWT says: the tenant claim, and when it was issued.
struct JwtClaims {
    tenant: String,
    issued_at: Option<i64>,
}

fn verify_jwt(jwt: &str) -> Result<JwtClaims, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("malformed JWT".into());
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = B64.decode(part).map_err(|_| "malformed JWT".to_string())?;
        serde_json::from_slice(&bytes).map_err(|_| "malformed JWT".into())
    };
    let header = decode(header)?;
    match header.get("alg").and_then(Value::as_str) {
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
    match header.get("kid") {
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
    let claims = decode(payload)?;
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
    let issued_at = time("iat")?.map(|iat| iat.floor() as i64);
    let max_lifetime = gucs::JWT_MAX_LIFETIME.get() as f64;
    if max_lifetime > 0.0 {
        let exp = time("exp")?.unwrap_or(0.0);
        let lifetime = exp - time("iat")?.unwrap_or(now);
        if lifetime > max_lifetime {
            return Err(format!(
                "the JWT lives {lifetime:.0} s, longer than tenancy.jwt_max_lifetime ({max_lifetime:.0} s)"
            ));
        }
    }
    let setting = |s: &GucSetting<Option<std::ffi::CString>>| {
        s.get()
            .map(|v| v.to_string_lossy().into_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(audience) = setting(&gucs::JWT_AUDIENCE) {
        let matches = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&audience)),
            _ => false,
        };
        if !matches {
            return Err(format!("the JWT is not for audience {audience:?} (aud)"));
        }
    }
    if let Some(issuer) = setting(&gucs::JWT_ISSUER) {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(format!("the JWT was not issued by {issuer:?} (iss)"));
        }
    }
    let claim = gucs::JWT_CLAIM
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tenant = claims
        .get(&claim)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("the JWT has no \"{claim}\" claim naming the tenant"))?;
    Ok(JwtClaims { tenant, issued_at })
}

/// The secret of `kid` if it exists and is not retired.
fn usable_key(kid: &str) -> Result<Vec<u8>, String> {
    // Never echo what cannot be a key id (control characters, any length) into
    // errors and the server log.
    if !kid_is_valid(kid) {
        return Err("malformed key id".into());
    }
    let (keys, _) = keys();
    match keys.get(kid) {
        Some(key) if !key.retired => Ok(key.secret.clone()),
        Some(_) => Err(format!("signing key {kid:?} is retired")),
        None => Err(format!("unknown signing key {kid:?}")),
    }
}

fn sign(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time comparison of the expected and the presented signature.
fn verify(secret: &[u8], message: &[u8], signature: &[u8]) -> Result<(), String> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(message);
    mac.verify_slice(signature)
        .map_err(|_| "the signature does not match".into())
}

/// All keys, and the kid of the newest active one.
fn keys() -> (Keys, Option<String>) {
    if let Some(loaded) = KEYS.with_borrow(|k| k.clone()) {
        return loaded;
    }
    let epoch = invalidation::epoch();
    let rows: Vec<(String, Vec<u8>, bool)> = catalog::as_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT kid, secret, retired_at IS NOT NULL FROM tenancy.signing_keys \
                     ORDER BY retired_at IS NULL, created_at, kid",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        row.get(1)?.unwrap(),
                        row.get(2)?.unwrap(),
                        row.get(3)?.unwrap(),
                    ))
                })
                .collect::<Result<_, pgrx::spi::Error>>()
        })
    })
    .or_raise("reading tenancy.signing_keys");
    let newest = rows
        .iter()
        .rev()
        .find(|(_, _, retired)| !retired)
        .map(|(kid, _, _)| kid.clone());
    let keys: Keys = Rc::new(
        rows.into_iter()
            .map(|(kid, secret, retired)| (kid, Key { secret, retired }))
            .collect(),
    );
    let loaded = (keys, newest);
    KEYS.with_borrow_mut(|k| {
        if invalidation::epoch() == epoch {
            *k = Some(loaded.clone());
        }
    });
    loaded
}

fn kid_is_valid(kid: &str) -> bool {
    (1..=63).contains(&kid.len())
        && kid.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && kid
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn random_secret() -> Vec<u8> {
    system::strong_random(32)
        .unwrap_or_else(|| Internal("could not generate a random signing secret".into()).raise())
}

fn interval_seconds(interval: pgrx::datum::Interval) -> i64 {
    // Months count as 30 days, as PostgreSQL's own interval arithmetic does.
    (interval.months() as i64 * 30 + interval.days() as i64) * 86_400
        + interval.micros() / 1_000_000
}
