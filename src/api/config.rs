//! Per-tenant configuration: application defaults and tenant overrides (JSON
//! values). Reads in a tenant context come from a backend-local cache that is
//! emptied with the tenant cache whenever a configuration table changes.

use crate::api::{audit, context, limits};
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError::*};
use crate::postgres::jsonb::Jsonb;
use crate::postgres::{gucs, invalidation, query, security};
use crate::tenant::{from_sql, to_sql, Status};
use lru::LruCache;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::rc::Rc;
use uuid::Uuid;

type Document = Rc<Map<String, Value>>;

struct ConfigCache {
    defaults: Option<Document>,
    /// Each tenant's overrides (not merged: a default change must not touch them).
    overrides: LruCache<Uuid, Document>,
}

thread_local! {
    static CONFIG: RefCell<ConfigCache> = RefCell::new(ConfigCache {
        defaults: None,
        overrides: LruCache::new(NonZeroUsize::new(1).unwrap()),
    });
}

/// Called from the relcache callback: only frees memory.
pub fn invalidate() {
    CONFIG.with_borrow_mut(|c| {
        c.defaults = None;
        c.overrides.clear();
    })
}

/// The effective value of `key` for the current tenant: its override, else the
/// default, else NULL. Without a tenant context, the default.
#[pg_extern(stable, parallel_safe, name = "config", requires = ["catalog"])]
fn config_value(key: Option<&str>) -> Option<JsonB> {
    let key = required(key, "key");
    invalidation::catch_up();
    if let Some(tenant) = context::current() {
        if let Some(value) = overrides(tenant.id).get(key) {
            return Some(JsonB(value.clone()));
        }
    }
    defaults().get(key).cloned().map(JsonB)
}

/// Whether any of `keys` has a default or a tenant's value.
pub(crate) fn configured_anywhere(keys: &[&str]) -> bool {
    if keys.iter().any(|key| defaults().contains_key(*key)) {
        return true;
    }
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let (found, _) = query::on_latest_snapshot(|| {
        catalog::as_owner(|| {
            // (The partial index tenant_config_limits answers it.) Read-only:
            // on the snapshot pushed above.
            Spi::connect(|client| {
                client
                    .select(
                        "SELECT EXISTS (SELECT FROM tenancy.tenant_config \
                          WHERE key LIKE 'limits.%' AND key = ANY ($1))",
                        Some(1),
                        &[keys.into()],
                    )?
                    .first()
                    .get_one::<bool>()
            })
        })
    });
    found
        .or_raise("reading tenancy.tenant_config")
        .unwrap_or(false)
}

/// The application default of `key`.
pub(crate) fn default_value(key: &str) -> Option<Value> {
    defaults().get(key).cloned()
}

/// All effective values for the current tenant: the defaults merged with its
/// overrides (the tenant wins).
#[pg_extern(stable, parallel_safe, name = "config", requires = ["catalog"])]
fn config_document() -> JsonB {
    invalidation::catch_up();
    let mut document = (*defaults()).clone();
    if let Some(tenant) = context::current() {
        document.extend(
            overrides(tenant.id)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    JsonB(Value::Object(document))
}

#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn set_config_default(key: Option<&str>, value: Option<Jsonb>) {
    let key = valid_key(required(key, "key"));
    let Jsonb(value) = required(value, "value");
    limits::check(key, &value);
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let previous = change(
            "INSERT INTO tenancy.config_defaults AS c (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now() \
             RETURNING (SELECT value FROM tenancy.config_defaults WHERE key = $1)",
            &[key.into(), JsonB(value.clone()).into()],
        );
        audit::record(
            &role,
            "config",
            None,
            details("default", key, Some(&value), previous),
        );
    })
}

/// Remove a default; true if there was one.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn unset_config_default(key: Option<&str>) -> bool {
    let key = required(key, "key");
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let previous = change(
            "DELETE FROM tenancy.config_defaults WHERE key = $1 RETURNING value",
            &[key.into()],
        );
        let removed = previous.is_some();
        if removed {
            audit::record(
                &role,
                "config",
                None,
                details("default", key, None, previous),
            );
        }
        removed
    })
}

#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn set_tenant_config(identifier: Option<&str>, key: Option<&str>, value: Option<Jsonb>) {
    let identifier = required(identifier, "identifier");
    let key = valid_key(required(key, "key"));
    let Jsonb(value) = required(value, "value");
    limits::check(key, &value);
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let id = configurable_tenant(identifier);
        let previous = change(
            "INSERT INTO tenancy.tenant_config AS c (tenant_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now() \
             RETURNING (SELECT value FROM tenancy.tenant_config WHERE tenant_id = $1 AND key = $2)",
            &[to_sql(id).into(), key.into(), JsonB(value.clone()).into()],
        );
        audit::record(
            &role,
            "config",
            Some((id, identifier)),
            details("tenant", key, Some(&value), previous),
        );
    })
}

/// Remove a tenant's override (the default applies again); true if there was one.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn unset_tenant_config(identifier: Option<&str>, key: Option<&str>) -> bool {
    let identifier = required(identifier, "identifier");
    let key = required(key, "key");
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let id = configurable_tenant(identifier);
        let previous = change(
            "DELETE FROM tenancy.tenant_config WHERE tenant_id = $1 AND key = $2 RETURNING value",
            &[to_sql(id).into(), key.into()],
        );
        let removed = previous.is_some();
        if removed {
            audit::record(
                &role,
                "config",
                Some((id, identifier)),
                details("tenant", key, None, previous),
            );
        }
        removed
    })
}

/// The configuration key rule (also the catalog's *_key_format constraints).
pub(crate) fn key_is_valid(key: &str) -> bool {
    (1..=100).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

fn valid_key(key: &str) -> &str {
    if !key_is_valid(key) {
        InvalidValue(
            format!("invalid configuration key \"{key}\""),
            "A key has 1 to 100 characters: lowercase ASCII letters, digits, '_', '.' and '-', \
             starting with a letter (e.g. 'billing.plan')."
                .into(),
        )
        .raise();
    }
    key
}

/// The id of a tenant whose configuration may change (not deleted).
fn configurable_tenant(identifier: &str) -> Uuid {
    let row = Spi::get_two_with_args::<pgrx::Uuid, String>(
        "SELECT id, status FROM tenancy.tenants WHERE identifier = $1",
        &[identifier.into()],
    );
    match row {
        Ok((Some(id), Some(status))) if Status::parse(&status) != Status::Deleted => from_sql(id),
        Ok((Some(_), Some(_))) => IllegalTransition(
            format!("tenant \"{identifier}\" is deleted and cannot be configured"),
            "A deleted tenant is kept only to reserve its identifier.".into(),
        )
        .raise(),
        _ => UnknownTenant(identifier.into()).raise(),
    }
}

/// Run a change whose RETURNING yields the previous value (None if there was none).
fn change(query: &str, args: &[pgrx::datum::DatumWithOid]) -> Option<Value> {
    Spi::connect_mut(|client| {
        let rows = client.update(query, None, args)?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.first().get_one::<JsonB>()
    })
    .or_raise("tenancy configuration statement")
    .map(|JsonB(v)| v)
}

/// Audit details of a configuration change; `value` None means unset.
fn details(scope: &str, key: &str, value: Option<&Value>, previous: Option<Value>) -> Value {
    let mut details = json!({"scope": scope, "key": key});
    match value {
        Some(value) => details["value"] = value.clone(),
        None => details["unset"] = Value::Bool(true),
    }
    if let Some(previous) = previous {
        details["previous"] = previous;
    }
    details
}

fn defaults() -> Document {
    if let Some(defaults) = CONFIG.with_borrow(|c| c.defaults.clone()) {
        return defaults;
    }
    let epoch = invalidation::epoch();
    let (defaults, latest) = load("SELECT key, value FROM tenancy.config_defaults", None);
    CONFIG.with_borrow_mut(|c| {
        if latest && invalidation::epoch() == epoch {
            c.defaults = Some(defaults.clone());
        }
    });
    defaults
}

fn overrides(id: Uuid) -> Document {
    let found = CONFIG.with_borrow_mut(|c| c.overrides.get(&id).cloned());
    if let Some(found) = found {
        return found;
    }
    let epoch = invalidation::epoch();
    let (overrides, latest) = load(
        "SELECT key, value FROM tenancy.tenant_config WHERE tenant_id = $1",
        Some(id),
    );
    CONFIG.with_borrow_mut(|c| {
        if latest && invalidation::epoch() == epoch {
            // cache_size() is at least 1 (the setting's minimum, and max(1)).
            let cap = NonZeroUsize::new(gucs::cache_size()).expect("at least 1");
            if c.overrides.cap() != cap {
                c.overrides.resize(cap);
            }
            c.overrides.put(id, overrides.clone());
        }
    });
    overrides
}

/// The entries, and whether they were read on the latest state (may be kept).
fn load(query: &str, tenant: Option<Uuid>) -> (Document, bool) {
    let args: Vec<pgrx::datum::DatumWithOid> =
        tenant.map(|id| to_sql(id).into()).into_iter().collect();
    let (entries, latest) = query::on_latest_snapshot(|| {
        catalog::as_owner(|| {
            Spi::connect(|client| {
                client
                    .select(query, None, &args)?
                    .map(|row| {
                        let key: String = query::required(&row, 1)?;
                        let JsonB(value) = query::required(&row, 2)?;
                        Ok((key, value))
                    })
                    .collect::<Result<Map<String, Value>, query::ReadError>>()
            })
        })
    });
    (
        Rc::new(entries.or_raise("reading tenancy configuration")),
        latest,
    )
}
