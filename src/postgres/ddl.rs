//! What a DDL command did, read from the command PostgreSQL collected for
//! its `ddl_command_end` event triggers (`pg_event_trigger_ddl_commands()`'s
//! `command`, of type pg_ddl_command): the parse tree of each ALTER TABLE
//! subcommand, of a CREATE or ALTER POLICY or a rename. The catalogs after the
//! command show only where it ended, not what it changed (a restore enables
//! row-level security on a table whose policy comes later).

use pgrx::pg_sys;
use std::ffi::CStr;

/// A change that can take something away from a table's protection.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    DisableRowSecurity,
    NoForceRowSecurity,
    /// A trigger disabled, or made to fire only in replica mode: by name, or
    /// every trigger (ALL, USER) when None.
    DisableTrigger(Option<String>),
    AlterPolicy(String),
    /// A permissive policy (ORed with the others) created, by name.
    CreatePermissivePolicy(String),
    RenamePolicy(String),
    RenameTrigger(String),
    /// A trigger replaced (CREATE OR REPLACE TRIGGER), by name.
    ReplaceTrigger(String),
    /// A trigger made to depend on an extension (ALTER TRIGGER … DEPENDS ON
    /// EXTENSION: dropping the extension drops it), by name.
    TriggerDependsOnExtension(String),
}

/// The changes of one collected command.
///
/// # Safety
/// `command` is the `command` column of `pg_event_trigger_ddl_commands()`
/// (a `CollectedCommand` pointer), read inside the event trigger's call.
pub unsafe fn changes(command: pg_sys::Datum) -> Vec<Change> {
    use pg_sys::AlterTableType as At;
    let command = command.cast_mut_ptr::<pg_sys::CollectedCommand>();
    let mut changes = Vec::new();
    // SAFETY: as the caller promises; nodes are read by their tags, strings
    // copied at once.
    unsafe {
        if command.is_null() {
            return changes;
        }
        let name = |s: *const std::ffi::c_char| {
            (!s.is_null()).then(|| CStr::from_ptr(s).to_string_lossy().into_owned())
        };
        match (*command).type_ {
            pg_sys::CollectedCommandType::SCT_AlterTable => {
                for cell in super::cells((*command).d.alterTable.subcmds) {
                    let sub = cell.ptr_value.cast::<pg_sys::CollectedATSubcmd>();
                    let tree = (*sub).parsetree;
                    if tree.is_null() || (*tree).type_ != pg_sys::NodeTag::T_AlterTableCmd {
                        continue;
                    }
                    let cmd = &*tree.cast::<pg_sys::AlterTableCmd>();
                    match cmd.subtype {
                        At::AT_DisableRowSecurity => changes.push(Change::DisableRowSecurity),
                        At::AT_NoForceRowSecurity => changes.push(Change::NoForceRowSecurity),
                        At::AT_DisableTrig | At::AT_EnableReplicaTrig => {
                            changes.push(Change::DisableTrigger(name(cmd.name)))
                        }
                        At::AT_DisableTrigAll | At::AT_DisableTrigUser => {
                            changes.push(Change::DisableTrigger(None))
                        }
                        _ => {}
                    }
                }
            }
            pg_sys::CollectedCommandType::SCT_Simple => {
                let tree = (*command).parsetree;
                if tree.is_null() {
                    return changes;
                }
                match (*tree).type_ {
                    pg_sys::NodeTag::T_CreatePolicyStmt => {
                        let stmt = &*tree.cast::<pg_sys::CreatePolicyStmt>();
                        if stmt.permissive {
                            changes
                                .extend(name(stmt.policy_name).map(Change::CreatePermissivePolicy));
                        }
                    }
                    pg_sys::NodeTag::T_CreateTrigStmt => {
                        let stmt = &*tree.cast::<pg_sys::CreateTrigStmt>();
                        if stmt.replace {
                            changes.extend(name(stmt.trigname).map(Change::ReplaceTrigger));
                        }
                    }
                    pg_sys::NodeTag::T_AlterObjectDependsStmt => {
                        let stmt = &*tree.cast::<pg_sys::AlterObjectDependsStmt>();
                        // ALTER TRIGGER name ON table: the object is [name].
                        let object = stmt.object.cast::<pg_sys::List>();
                        if stmt.objectType == pg_sys::ObjectType::OBJECT_TRIGGER
                            && !stmt.remove
                            && !object.is_null()
                            && (*object).type_ == pg_sys::NodeTag::T_List
                        {
                            let last = super::cells(object).last().map(|cell| cell.ptr_value);
                            let trigger = last
                                .map(|node| node.cast::<pg_sys::String>())
                                .filter(|node| (**node).type_ == pg_sys::NodeTag::T_String)
                                .and_then(|node| name((*node).sval));
                            changes.extend(trigger.map(Change::TriggerDependsOnExtension));
                        }
                    }
                    pg_sys::NodeTag::T_AlterPolicyStmt => {
                        let stmt = &*tree.cast::<pg_sys::AlterPolicyStmt>();
                        changes.extend(name(stmt.policy_name).map(Change::AlterPolicy));
                    }
                    pg_sys::NodeTag::T_RenameStmt => {
                        let stmt = &*tree.cast::<pg_sys::RenameStmt>();
                        let old = name(stmt.subname);
                        match stmt.renameType {
                            pg_sys::ObjectType::OBJECT_POLICY => {
                                changes.extend(old.map(Change::RenamePolicy))
                            }
                            pg_sys::ObjectType::OBJECT_TRIGGER => {
                                changes.extend(old.map(Change::RenameTrigger))
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    changes
}
