//! Signing keys: the secrets behind tenancy tokens and JWTs (HMAC-SHA256),
//! in `tenancy.signing_keys`, which no application role can read. New tokens
//! are signed with the newest active key; older keys verify until retired.

use crate::api::audit;
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError::*};
use crate::postgres::{invalidation, query, security, system};
use pgrx::prelude::*;
use serde_json::json;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

pub(crate) struct Key {
    pub secret: Vec<u8>,
    pub retired: bool,
}

/// kid → key.
pub(crate) type Keys = Rc<BTreeMap<String, Key>>;

thread_local! {
    /// Loaded on first use, dropped with the other caches on invalidation.
    static KEYS: RefCell<Option<(Keys, Option<String>)>> = const { RefCell::new(None) };
}

pub fn invalidate() {
    KEYS.with_borrow_mut(|k| *k = None);
}

/// Add a signing key: `secret` (at least 32 bytes) shared with an auth server,
/// or by default 32 random bytes. New tokens are signed with the newest key;
/// older keys keep verifying until retired. Returns the kid. With
/// `if_not_exists`, a key that exists already is left as it is (a deploy step
/// that runs again), unless the secret given differs from its own: compared
/// only for a superuser, who may read it anyway (for anyone else the answer
/// would tell whether a guess of the secret is right).
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn add_signing_key(
    kid: Option<&str>,
    secret: default!(Option<&[u8]>, "NULL"),
    if_not_exists: default!(Option<bool>, false),
) -> String {
    let kid = required(kid, "kid");
    let if_not_exists = required(if_not_exists, "if_not_exists");
    if !kid_is_valid(kid) {
        InvalidValue(
            format!("invalid key id {kid:?}"),
            "A key id has 1 to 63 characters: lowercase letters, digits, '_' and '-'.".into(),
        )
        .raise();
    }
    let secret = match secret {
        Some(secret) if secret.len() >= 32 => Some(secret.to_vec()),
        Some(secret) => InvalidValue(
            format!("a signing secret needs at least 32 bytes, not {}", secret.len()),
            "Use 32 random bytes or more, e.g. gen_random_bytes(32), or omit it to have one generated."
                .into(),
        )
        .raise(),
        None => None,
    };
    let role = security::current_role_name();
    let compares = security::is_superuser();
    catalog::as_owner(|| {
        let existing = query::optional_one::<Vec<u8>>(
            "SELECT secret FROM tenancy.signing_keys WHERE kid = $1",
            &[kid.into()],
        )
        .or_raise("reading tenancy.signing_keys");
        match existing {
            Some(_) if if_not_exists && !compares => {
                if secret.is_some() {
                    notice!(
                        "signing key \"{kid}\" exists and is kept; its secret was not compared \
                         with the one given (only a superuser's call compares them)"
                    );
                }
            }
            Some(existing) if if_not_exists && secret.as_ref().is_none_or(|s| *s == existing) => {}
            Some(_) if if_not_exists => DuplicateKey(
                kid.into(),
                "It exists with another secret: choose another key id, or retire the old key \
                 (tenancy.retire_signing_key) once no token signed with it is in use."
                    .into(),
            )
            .raise(),
            Some(_) => DuplicateKey(
                kid.into(),
                "Key ids are unique. To make a deploy step repeatable, pass \
                 if_not_exists => true."
                    .into(),
            )
            .raise(),
            None => {
                Spi::run_with_args(
                    "INSERT INTO tenancy.signing_keys (kid, secret, created_by) VALUES ($1, $2, $3)",
                    &[
                        kid.into(),
                        secret.unwrap_or_else(random_secret).into(),
                        role.as_str().into(),
                    ],
                )
                .or_raise("adding to tenancy.signing_keys");
                audit::record(&role, "key", None, json!({"kid": kid, "event": "added"}));
            }
        }
    });
    kid.to_string()
}

/// Stop accepting tokens signed with `kid`.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn retire_signing_key(kid: Option<&str>) {
    let kid = required(kid, "kid");
    let role = security::current_role_name();
    catalog::as_owner(|| {
        if !catalog::retire("signing_keys", "kid", kid) {
            UndefinedObject(
                format!("signing key {kid:?} does not exist"),
                "List the keys with SELECT * FROM tenancy.signing_key_info.".into(),
            )
            .raise();
        }
        audit::record(&role, "key", None, json!({"kid": kid, "event": "retired"}));
    })
}

/// The secret of `kid` if it exists and is not retired.
pub(crate) fn usable_key(kid: &str) -> Result<Vec<u8>, String> {
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

/// All keys, and the kid of the newest active one.
pub(crate) fn keys() -> (Keys, Option<String>) {
    if let Some(loaded) = KEYS.with_borrow(|k| k.clone()) {
        return loaded;
    }
    let epoch = invalidation::epoch();
    let (rows, latest) = query::on_latest_snapshot(|| {
        catalog::as_owner(|| {
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
                            query::required(&row, 1)?,
                            query::required(&row, 2)?,
                            query::required(&row, 3)?,
                        ))
                    })
                    .collect::<Result<Vec<(String, Vec<u8>, bool)>, query::ReadError>>()
            })
        })
    });
    let rows = rows.or_raise("reading tenancy.signing_keys");
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
        if latest && invalidation::epoch() == epoch {
            *k = Some(loaded.clone());
        }
    });
    loaded
}

pub(crate) fn kid_is_valid(kid: &str) -> bool {
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
