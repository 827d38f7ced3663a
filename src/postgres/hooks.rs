//! Hooks into statement processing and transaction ends. The boundary knows
//! no feature: callers register what to run.
//!
//! It also keeps the stack of statements the executor is running (their
//! `ExecutorRun` and `ExecutorFinish`, where triggers fire), so that a
//! feature can tell the statement it ran from those its triggers and
//! functions run in turn.
//!
//! Every statement of the cluster passes through these hooks, so they leave
//! it exactly as PostgreSQL runs it: the next hook (or PostgreSQL itself) is
//! called directly, never through pgrx's error guard, which would catch an
//! error raised there and raise it again with only some of its fields (the
//! position, context, and schema, table and constraint names would be lost).
//! A frame that an error passes through holds nothing to drop.

use super::{cells, BackendCell, BackendRefCell};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::{c_char, CStr};

/// What the extension looks at in a utility statement before it runs.
pub enum Utility<'a> {
    /// `DECLARE name CURSOR WITH HOLD`.
    HoldCursor(&'a str),
    /// `LOCK TABLE`, and `REINDEX`, `CLUSTER`, `VACUUM` and `ANALYZE`, which
    /// lock the relations they name: each relation named that exists.
    Lock(Vec<pg_sys::Oid>),
    /// `SET ROLE name`: the role it switches to (None when it does not
    /// exist); `RESET ROLE`, `SET ROLE NONE`, `SET SESSION AUTHORIZATION` and
    /// `RESET ALL`: back to the session's role (None as well).
    RoleChange(Option<pg_sys::Oid>),
    /// `CREATE`, `ALTER` (also `ALTER ROLE … SET`, a password) or `DROP ROLE`.
    RoleDdl,
    /// Inside a restricted call (see `functions`), a statement that makes,
    /// changes or drops something that outlives the call (CREATE, ALTER,
    /// GRANT, COMMENT, …), by its command name.
    InRestrictedCall(String),
    /// `GRANT`/`REVOKE` on objects, or of roles: the schema each object is
    /// named in (None: unqualified), and whether any target lives outside
    /// every schema (a database, a language, a role, …).
    Grant {
        schemas: Vec<Option<String>>,
        global: bool,
        /// `ON SCHEMA`: privileges on the schemas themselves.
        on_schema: bool,
    },
}

/// A statement once its names are resolved, before it is planned.
pub struct Analyzed {
    /// The relations its range tables name (views unexpanded; sub-queries,
    /// CTEs and sub-links included), not those its expressions only mention.
    pub relations: Vec<pg_sys::Oid>,
    /// It only changes the session's own state (SET, RESET, SHOW, DISCARD,
    /// CLOSE, transaction control): it resolves no name and runs no code.
    pub session_only: bool,
}

/// A statement the executor starts.
pub struct Statement(*const pg_sys::QueryDesc);

impl Statement {
    /// Identifies the statement while it runs (see `running_statement`).
    pub fn id(&self) -> usize {
        self.0 as usize
    }

    /// Every relation the plan reads or changes (views included: PostgreSQL
    /// keeps them in the plan for their permission checks), and whether the
    /// statement changes it (INSERT, UPDATE, DELETE or MERGE, also in a WITH).
    pub fn relations(&self) -> Vec<(pg_sys::Oid, bool)> {
        // SAFETY: ExecutorStart's query descriptor holds a valid plan; the
        // lists are read by their documented cell types.
        unsafe {
            let plan = &*(*self.0).plannedstmt;
            let rtable = cells(plan.rtable);
            let changed: Vec<pg_sys::Oid> = cells(plan.resultRelations)
                .iter()
                .filter_map(|cell| {
                    let entry =
                        rtable.get(usize::try_from(cell.int_value).ok()?.checked_sub(1)?)?;
                    Some((*entry.ptr_value.cast::<pg_sys::RangeTblEntry>()).relid)
                })
                .collect();
            cells(plan.relationOids)
                .iter()
                .map(|cell| (cell.oid_value, changed.contains(&cell.oid_value)))
                .collect()
        }
    }

    /// The relations of the plan's range table (views included: PostgreSQL
    /// keeps their entries for the permission checks).
    pub fn relation_oids(&self) -> Vec<pg_sys::Oid> {
        // SAFETY: as in `relations`; range table entries by their kind.
        unsafe {
            cells((*(*self.0).plannedstmt).rtable)
                .iter()
                .map(|cell| &*cell.ptr_value.cast::<pg_sys::RangeTblEntry>())
                .filter(|entry| {
                    entry.rtekind == pg_sys::RTEKind::RTE_RELATION
                        || entry.rtekind == pg_sys::RTEKind::RTE_SUBQUERY
                })
                .map(|entry| entry.relid)
                .filter(|relid| *relid != pg_sys::InvalidOid)
                .collect()
        }
    }

    /// Whether it is a plain SELECT that reads `relid` (it writes nothing).
    pub fn selects_from(&self, relid: pg_sys::Oid) -> bool {
        // SAFETY: as in `relations`.
        let select = unsafe {
            let plan = &*(*self.0).plannedstmt;
            plan.commandType == pg_sys::CmdType::CMD_SELECT && !plan.hasModifyingCTE
        };
        select && self.relation_oids().contains(&relid)
    }

    /// The relation a DELETE deletes from (its first result relation).
    pub fn deletes_from(&self) -> Option<pg_sys::Oid> {
        // SAFETY: as in `relations`.
        unsafe {
            let plan = &*(*self.0).plannedstmt;
            if plan.commandType != pg_sys::CmdType::CMD_DELETE {
                return None;
            }
            self.relations()
                .into_iter()
                .find(|(_, changed)| *changed)
                .map(|(oid, _)| oid)
        }
    }
}

/// Whether code that the owners of relations attached to them may be what
/// runs now: outside a client's SELECT (or CALL, or DO, of the client's own
/// code) being executed — while a statement is parsed, planned (an operator's
/// selectivity estimate, an immutable function folded), its parameters bound
/// (a domain's CHECK), or while the client's statement writes (its rules'
/// actions run as statements of their own), copies or executes a prepared
/// statement (planned inside it) — or while a statement running now, the
/// client's own or one nested in it, writes or reads any relation (column
/// defaults, constraints, rules, triggers, views, policies, the operators of
/// their columns' types run in the caller's session as part of it).
pub fn running_others_code() -> bool {
    use pg_sys::CommandTag::*;
    // SAFETY: the portal PostgreSQL runs the client's statement in, or NULL
    // (parsing, planning and binding happen before it runs).
    let client_select = unsafe {
        !pg_sys::ActivePortal.is_null()
            && matches!(
                (*pg_sys::ActivePortal).commandTag,
                CMDTAG_SELECT | CMDTAG_CALL | CMDTAG_DO
            )
    };
    // (Read in place: nothing below runs a statement.)
    !client_select
        || RUNNING.with(|running| {
            running.try_borrow().is_ok_and(|running| {
                running
                    .iter()
                    .any(|&query| Statement(query as *const pg_sys::QueryDesc).on_relations())
            })
        })
}

impl Statement {
    fn on_relations(&self) -> bool {
        // SAFETY: a statement on the running stack, whose plan outlives its
        // run; range table entries by their kind.
        unsafe {
            let plan = &*(*self.0).plannedstmt;
            plan.commandType != pg_sys::CmdType::CMD_SELECT
                || plan.hasModifyingCTE
                || cells(plan.rtable)
                    .iter()
                    .map(|cell| &*cell.ptr_value.cast::<pg_sys::RangeTblEntry>())
                    .any(|entry| {
                        (entry.rtekind == pg_sys::RTEKind::RTE_RELATION
                            || entry.rtekind == pg_sys::RTEKind::RTE_SUBQUERY)
                            && entry.relid != pg_sys::InvalidOid
                    })
        }
    }
}

/// The statement whose `ExecutorRun` or `ExecutorFinish` is innermost: the
/// one running now (plpgsql's simple expressions, which skip the executor,
/// count as their caller's), or None outside the executor.
pub fn running_statement() -> Option<usize> {
    RUNNING.with(|running| running.try_borrow().ok().and_then(|r| r.last().copied()))
}

/// How many statements are in ExecutorRun or ExecutorFinish.
pub fn running_depth() -> usize {
    RUNNING.with(|running| running.try_borrow().map_or(0, |r| r.len()))
}

// Read on every statement: plain statics (see `BackendCell`).
static PREVIOUS_UTILITY: BackendCell<pg_sys::ProcessUtility_hook_type> = BackendCell::new(None);
static PREVIOUS_START: BackendCell<pg_sys::ExecutorStart_hook_type> = BackendCell::new(None);
static PREVIOUS_RUN: BackendCell<pg_sys::ExecutorRun_hook_type> = BackendCell::new(None);
static PREVIOUS_FINISH: BackendCell<pg_sys::ExecutorFinish_hook_type> = BackendCell::new(None);
static PREVIOUS_END: BackendCell<pg_sys::ExecutorEnd_hook_type> = BackendCell::new(None);
static PREVIOUS_EMIT_LOG: BackendCell<pg_sys::emit_log_hook_type> = BackendCell::new(None);
static PREVIOUS_PLANNER: BackendCell<pg_sys::planner_hook_type> = BackendCell::new(None);
static PREVIOUS_ANALYZE: BackendCell<pg_sys::post_parse_analyze_hook_type> = BackendCell::new(None);
static CALLBACKS: BackendCell<Option<Callbacks>> = BackendCell::new(None);
/// The statements in ExecutorRun or ExecutorFinish, innermost last.
static RUNNING: BackendRefCell<Vec<usize>> = BackendRefCell::new(Vec::new());
/// How many utility statements are running (one inside another: a
/// function called by CALL runs them).
static UTILITIES: BackendCell<usize> = BackendCell::new(0);

thread_local! {
    /// How many statements and utility statements were running when each
    /// open subtransaction began: an error leaves the executor without
    /// passing our frames (no guard there), and the subtransaction's abort
    /// takes both back.
    static SUBTRANSACTIONS: RefCell<Vec<(pg_sys::SubTransactionId, usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Registered callbacks: `after_analyze(relations)` once a statement is
/// parsed and its names resolved, before it is planned, with every relation
/// it names (views unexpanded, sub-queries included), and `before_run(statement)`
/// before each run of a statement (a FETCH from a cursor is one), both while
/// `wanted()`; `before_utility(statement)` before every utility statement the
/// extension looks at; `before_executor(statement)` before the executor
/// starts a statement, while `executor_wanted()`; all may raise.
/// `on_transaction_end(committed)` after every commit, abort and prepare (it
/// may only change memory). Once per backend, from _PG_init.
#[derive(Clone, Copy)]
pub struct Callbacks {
    /// Whether `after_analyze` and `before_run` want to see statements now
    /// (the walk that collects a statement's relations, and an error guard,
    /// cost every statement otherwise). Asked outside any error guard, on
    /// every statement: it may not panic, and raises only as PostgreSQL
    /// does (through frames that hold nothing to drop).
    pub wanted: fn() -> bool,
    pub after_analyze: fn(&Analyzed),
    pub before_utility: fn(&Utility),
    /// Whether `before_executor` wants to see statements now, asked as
    /// `wanted` is.
    pub executor_wanted: fn() -> bool,
    pub before_executor: fn(&Statement),
    pub before_run: fn(&Statement),
    pub on_transaction_end: fn(bool),
}

pub fn init(callbacks: Callbacks) {
    CALLBACKS.set(Some(callbacks));
    // SAFETY: chaining the hooks as every extension does, once per backend;
    // the callbacks only reset backend-local state.
    unsafe {
        PREVIOUS_UTILITY.set(pg_sys::ProcessUtility_hook);
        pg_sys::ProcessUtility_hook = Some(process_utility);
        PREVIOUS_START.set(pg_sys::ExecutorStart_hook);
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_RUN.set(pg_sys::ExecutorRun_hook);
        pg_sys::ExecutorRun_hook = Some(executor_run);
        PREVIOUS_FINISH.set(pg_sys::ExecutorFinish_hook);
        pg_sys::ExecutorFinish_hook = Some(executor_finish);
        PREVIOUS_END.set(pg_sys::ExecutorEnd_hook);
        pg_sys::ExecutorEnd_hook = Some(executor_end);
        PREVIOUS_EMIT_LOG.set(pg_sys::emit_log_hook);
        pg_sys::emit_log_hook = Some(emit_log);
        PREVIOUS_PLANNER.set(pg_sys::planner_hook);
        pg_sys::planner_hook = Some(planner);
        PREVIOUS_ANALYZE.set(pg_sys::post_parse_analyze_hook);
        pg_sys::post_parse_analyze_hook = Some(post_parse_analyze);
        pg_sys::RegisterXactCallback(Some(transaction_event), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subtransaction_event), std::ptr::null_mut());
    }
}

unsafe extern "C-unwind" {
    /// PostgreSQL's own, unguarded (see the module's comment).
    #[link_name = "standard_ProcessUtility"]
    fn standard_process_utility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

/// Not guarded (see the module's comment): the extension's own checks run
/// in a guarded function first, then the statement runs as without it.
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: PostgreSQL passes a valid planned utility statement; the
    // arguments go on as received, to the next hook or PostgreSQL itself.
    unsafe {
        let measured = super::measure::measuring() && top_level();
        let acting = super::measure::acting(true) && top_level();
        if measured {
            measure_start(UTILITY);
        }
        if acting {
            measure_run(true, may_wait(pstmt));
        }
        before_utility(pstmt);
        let run = PREVIOUS_UTILITY.get().unwrap_or(standard_process_utility);
        UTILITIES.set(UTILITIES.get() + 1);
        run(
            pstmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        );
        UTILITIES.set(UTILITIES.get().saturating_sub(1));
        // (A context entered inside it may have started a run: `lazy`.)
        if acting || (super::measure::lazy() && top_level()) {
            super::measure::run_end();
        }
        if measured {
            measure_end(UTILITY, qc.as_ref().map_or(0, |qc| qc.nprocessed));
        }
    }
}

use super::measure::UTILITY;

/// Whether a statement starting now is the client's own: no other statement
/// or utility statement is running, and this is not a parallel worker
/// running its leader's (whose use the leader counts).
fn top_level() -> bool {
    // SAFETY: reads this process's worker number (-1 outside parallel workers).
    UTILITIES.get() == 0
        && running_depth() == 0
        && unsafe { pg_sys::ParallelWorkerNumber } < 0
        && !in_fast_path_call()
}

/// When the client's last fast-path call began (its statement timestamp).
static FAST_PATH_AT: BackendCell<pg_sys::TimestampTz> = BackendCell::new(0);

/// Whether the function whose execution PostgreSQL is about to check is one
/// the client called through the protocol's fast path (a FunctionCall
/// message, libpq's `PQfn`, a driver's large-object calls): no statement is
/// planned or run for it, so no other hook sees it. PostgreSQL marks the
/// backend's activity `STATE_FASTPATH` for the message (with
/// `track_activities` on, its default, which only a superuser changes). The
/// first function checked at top level is the one called: what runs after
/// it in the same message (its queries, what they fold while planned, a
/// deferred trigger at the implicit commit) is told apart by the message's
/// start time. Calls no PostgreSQL function that can fail.
pub fn is_fast_path_call() -> bool {
    if !fast_path_message() || !top_level() {
        return false;
    }
    // SAFETY: reads the current statement's start time.
    FAST_PATH_AT.set(unsafe { pg_sys::GetCurrentStatementStartTimestamp() });
    true
}

/// Whether a fast-path call `is_fast_path_call` saw is running: what runs
/// inside it (the queries of a SQL function called so) is part of it, not
/// statements of the client's. Calls no PostgreSQL function that can fail.
pub fn in_fast_path_call() -> bool {
    // SAFETY: reads the current statement's start time.
    fast_path_message()
        && FAST_PATH_AT.get() == unsafe { pg_sys::GetCurrentStatementStartTimestamp() }
}

/// Whether PostgreSQL handles a FunctionCall message now.
fn fast_path_message() -> bool {
    // SAFETY: this backend's own status entry, written only by it (NULL in
    // processes without one).
    unsafe { pg_sys::MyBEEntry.as_ref() }
        .is_some_and(|entry| entry.st_state == pg_sys::BackendState::STATE_FASTPATH)
}

#[pg_guard]
unsafe extern "C-unwind" fn measure_start(id: usize) {
    super::measure::start(id);
}

#[pg_guard]
unsafe extern "C-unwind" fn measure_run(utility: bool, admits: bool) {
    super::measure::run(utility, admits);
}

#[pg_guard]
unsafe extern "C-unwind" fn measure_planning() {
    super::measure::planning();
}

unsafe extern "C-unwind" {
    #[link_name = "standard_planner"]
    fn standard_planner(
        parse: *mut pg_sys::Query,
        query_string: *const c_char,
        cursor_options: i32,
        bound_params: pg_sys::ParamListInfo,
    ) -> *mut pg_sys::PlannedStmt;
}

/// Not guarded, like `process_utility`: a client's statement is about to be
/// planned (what PostgreSQL runs while planning — a folded function — is
/// part of it).
unsafe extern "C-unwind" fn planner(
    parse: *mut pg_sys::Query,
    query_string: *const c_char,
    cursor_options: i32,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    // SAFETY: the arguments as received, passed on.
    unsafe {
        if super::measure::measuring() && top_level() {
            super::measure::planning_starts();
        }
        if super::measure::acting(false) && top_level() {
            measure_planning();
        }
        PREVIOUS_PLANNER.get().unwrap_or(standard_planner)(
            parse,
            query_string,
            cursor_options,
            bound_params,
        )
    }
}

/// Whether a statement runs a prepared statement, itself or wrapped in
/// EXPLAIN or CREATE TABLE AS (`EXPLAIN … EXECUTE name`, `CREATE TABLE … AS
/// EXECUTE name`, and the two nested).
///
/// # Safety
/// A valid utility statement.
unsafe fn executes_prepared(statement: *mut pg_sys::Node) -> bool {
    // SAFETY: nodes read by their tags; a wrapped query is an analysed Query
    // (its utility statement the next wrapper) or the raw statement.
    unsafe {
        let mut node = statement;
        // EXPLAIN CREATE TABLE AS EXECUTE nests them: follow every wrapper.
        while !node.is_null() {
            node = match (*node).type_ {
                pg_sys::NodeTag::T_ExecuteStmt => return true,
                pg_sys::NodeTag::T_ExplainStmt => (*node.cast::<pg_sys::ExplainStmt>()).query,
                pg_sys::NodeTag::T_CreateTableAsStmt => {
                    (*node.cast::<pg_sys::CreateTableAsStmt>()).query
                }
                pg_sys::NodeTag::T_Query => (*node.cast::<pg_sys::Query>()).utilityStmt,
                _ => return false,
            };
        }
        false
    }
}

/// Whether a utility statement does work that a cap on concurrent
/// statements may hold back: not transaction control, SET, SHOW, and the
/// like, which a session needs to finish what it holds.
///
/// # Safety
/// A valid planned utility statement.
unsafe fn may_wait(pstmt: *mut pg_sys::PlannedStmt) -> bool {
    use pg_sys::NodeTag::*;
    // SAFETY: as the caller promises.
    let tag = unsafe { (*(*pstmt).utilityStmt).type_ };
    !matches!(
        tag,
        T_TransactionStmt
            | T_VariableSetStmt
            | T_VariableShowStmt
            | T_DiscardStmt
            | T_DeallocateStmt
            | T_PrepareStmt
            | T_ClosePortalStmt
            | T_ListenStmt
            | T_UnlistenStmt
            | T_LoadStmt
    )
}

#[pg_guard]
unsafe extern "C-unwind" fn measure_end(id: usize, rows: u64) {
    super::measure::end(id, rows);
}

#[pg_guard]
unsafe extern "C-unwind" fn before_utility(pstmt: *mut pg_sys::PlannedStmt) {
    let Some(callback) = CALLBACKS.get().map(|c| c.before_utility) else {
        return;
    };
    // SAFETY: PostgreSQL passes a valid planned utility statement; nodes are
    // read by their tags.
    unsafe {
        let statement = (*pstmt).utilityStmt;
        if statement.is_null() {
            return;
        }
        // What leaves nothing behind once the call returns (settings are
        // discarded, cursors closed; DO and CALL run statements checked in
        // turn; COMMIT is refused at commit).
        if super::functions::in_restricted_call()
            && !matches!(
                (*statement).type_,
                pg_sys::NodeTag::T_VariableSetStmt
                    | pg_sys::NodeTag::T_VariableShowStmt
                    | pg_sys::NodeTag::T_DeclareCursorStmt
                    | pg_sys::NodeTag::T_FetchStmt
                    | pg_sys::NodeTag::T_ClosePortalStmt
                    | pg_sys::NodeTag::T_LockStmt
                    | pg_sys::NodeTag::T_ExplainStmt
                    | pg_sys::NodeTag::T_NotifyStmt
                    | pg_sys::NodeTag::T_DoStmt
                    | pg_sys::NodeTag::T_CallStmt
                    | pg_sys::NodeTag::T_TransactionStmt
            )
        {
            let command = CStr::from_ptr(pg_sys::CreateCommandName(statement));
            callback(&Utility::InRestrictedCall(
                command.to_string_lossy().into_owned(),
            ));
        }
        // SET CONSTRAINTS would outlive a migration or a destroy's triggers
        // in the caller's transaction (a restricted call refuses it above),
        // and `SET seed` seeds the session's random() (discarding the
        // setting does not).
        if super::security::running_user_code()
            && (*statement).type_ == pg_sys::NodeTag::T_ConstraintsSetStmt
        {
            super::security::refuse_in_others_code("SET CONSTRAINTS", "");
        }
        // EXECUTE, also inside EXPLAIN or CREATE TABLE AS, shows or runs the
        // caller's prepared statements.
        if super::security::running_others_code() && executes_prepared(statement) {
            super::security::refuse_in_others_code("the session's prepared statements", "");
        }
        if (*statement).type_ == pg_sys::NodeTag::T_VariableSetStmt
            && super::security::running_others_code()
        {
            let set = &*statement.cast::<pg_sys::VariableSetStmt>();
            if !set.name.is_null() && CStr::from_ptr(set.name).to_bytes() == b"seed" {
                super::security::refuse_in_others_code("SET seed", "");
            }
        }
        match (*statement).type_ {
            pg_sys::NodeTag::T_DeclareCursorStmt => {
                let declare = &*statement.cast::<pg_sys::DeclareCursorStmt>();
                if declare.options & pg_sys::CURSOR_OPT_HOLD as i32 != 0 {
                    let name = CStr::from_ptr(declare.portalname).to_string_lossy();
                    callback(&Utility::HoldCursor(&name));
                }
            }
            pg_sys::NodeTag::T_LockStmt => {
                let lock = &*statement.cast::<pg_sys::LockStmt>();
                let ranges = cells(lock.relations)
                    .iter()
                    .map(|c| c.ptr_value.cast())
                    .collect();
                callback(&Utility::Lock(relids(ranges)));
            }
            pg_sys::NodeTag::T_ReindexStmt => {
                let reindex = &*statement.cast::<pg_sys::ReindexStmt>();
                callback(&Utility::Lock(relids(vec![reindex.relation])));
            }
            pg_sys::NodeTag::T_ClusterStmt => {
                let cluster = &*statement.cast::<pg_sys::ClusterStmt>();
                callback(&Utility::Lock(relids(vec![cluster.relation])));
            }
            pg_sys::NodeTag::T_VacuumStmt => {
                let vacuum = &*statement.cast::<pg_sys::VacuumStmt>();
                let ranges = cells(vacuum.rels)
                    .iter()
                    .map(|c| (*c.ptr_value.cast::<pg_sys::VacuumRelation>()).relation)
                    .collect();
                callback(&Utility::Lock(relids(ranges)));
            }
            pg_sys::NodeTag::T_VariableSetStmt => {
                let set = &*statement.cast::<pg_sys::VariableSetStmt>();
                let name = (!set.name.is_null()).then(|| CStr::from_ptr(set.name));
                if name == Some(c"role") && set.kind == pg_sys::VariableSetKind::VAR_SET_VALUE {
                    // SET ROLE name: a string constant.
                    let role = cells(set.args).first().and_then(|cell| {
                        let constant = &*cell.ptr_value.cast::<pg_sys::A_Const>();
                        (constant.type_ == pg_sys::NodeTag::T_A_Const && !constant.isnull)
                            .then(|| CStr::from_ptr(constant.val.sval.sval))
                    });
                    let target = role
                        .filter(|role| *role != c"none")
                        .map(|role| pg_sys::get_role_oid(role.as_ptr(), true))
                        .filter(|oid| *oid != pg_sys::InvalidOid);
                    callback(&Utility::RoleChange(target));
                } else if set.kind == pg_sys::VariableSetKind::VAR_RESET_ALL
                    || name.is_some_and(|n| n == c"role" || n == c"session_authorization")
                {
                    callback(&Utility::RoleChange(None));
                }
            }
            pg_sys::NodeTag::T_GrantStmt => {
                let grant = &*statement.cast::<pg_sys::GrantStmt>();
                let (schemas, global) = grant_targets(grant);
                callback(&Utility::Grant {
                    schemas,
                    global,
                    on_schema: grant.targtype == pg_sys::GrantTargetType::ACL_TARGET_OBJECT
                        && grant.objtype == pg_sys::ObjectType::OBJECT_SCHEMA,
                });
            }
            pg_sys::NodeTag::T_CreateRoleStmt
            | pg_sys::NodeTag::T_AlterRoleStmt
            | pg_sys::NodeTag::T_AlterRoleSetStmt
            | pg_sys::NodeTag::T_DropRoleStmt => callback(&Utility::RoleDdl),
            pg_sys::NodeTag::T_GrantRoleStmt => callback(&Utility::Grant {
                schemas: Vec::new(),
                global: true,
                on_schema: false,
            }),
            _ => {}
        }
    }
}

/// The relations that exist among those named (NULL, or missing: left out).
///
/// # Safety
/// Each pointer is NULL or a parsed RangeVar.
unsafe fn relids(ranges: Vec<*mut pg_sys::RangeVar>) -> Vec<pg_sys::Oid> {
    ranges
        .into_iter()
        .filter(|range| !range.is_null())
        // SAFETY: a name lookup that takes no lock and may find nothing.
        .map(|range| unsafe {
            pg_sys::RangeVarGetRelidExtended(
                range,
                pg_sys::NoLock as i32,
                pg_sys::RVROption::RVR_MISSING_OK,
                None,
                std::ptr::null_mut(),
            )
        })
        .filter(|relid| *relid != pg_sys::InvalidOid)
        .collect()
}

/// The schema each object of a GRANT or REVOKE is named in, and whether a
/// target lives outside every schema.
///
/// # Safety
/// `grant` is a parsed GrantStmt.
unsafe fn grant_targets(grant: &pg_sys::GrantStmt) -> (Vec<Option<String>>, bool) {
    use pg_sys::ObjectType::*;
    // SAFETY: node lists of the types the grammar builds for each target.
    unsafe {
        let text = |node: *mut std::ffi::c_void| {
            let string = &*node.cast::<pg_sys::String>();
            CStr::from_ptr(string.sval).to_string_lossy().into_owned()
        };
        // A qualified name (a list of strings): its schema, before the last part.
        let qualifier = |names: *const pg_sys::List| {
            let parts = cells(names);
            (parts.len() >= 2).then(|| text(parts[parts.len() - 2].ptr_value))
        };
        let objects = cells(grant.objects);
        if grant.targtype == pg_sys::GrantTargetType::ACL_TARGET_ALL_IN_SCHEMA
            || grant.objtype == OBJECT_SCHEMA
        {
            return (
                objects.iter().map(|o| Some(text(o.ptr_value))).collect(),
                false,
            );
        }
        match grant.objtype {
            OBJECT_TABLE | OBJECT_SEQUENCE | OBJECT_FOREIGN_TABLE => {
                let schemas = objects
                    .iter()
                    .map(|o| {
                        let range = &*o.ptr_value.cast::<pg_sys::RangeVar>();
                        (!range.schemaname.is_null()).then(|| {
                            CStr::from_ptr(range.schemaname)
                                .to_string_lossy()
                                .into_owned()
                        })
                    })
                    .collect();
                (schemas, false)
            }
            OBJECT_FUNCTION | OBJECT_PROCEDURE | OBJECT_ROUTINE | OBJECT_AGGREGATE => {
                let schemas = objects
                    .iter()
                    .map(|o| qualifier((*o.ptr_value.cast::<pg_sys::ObjectWithArgs>()).objname))
                    .collect();
                (schemas, false)
            }
            OBJECT_TYPE | OBJECT_DOMAIN => (
                objects
                    .iter()
                    .map(|o| qualifier(o.ptr_value.cast()))
                    .collect(),
                false,
            ),
            _ => (Vec::new(), true),
        }
    }
}

unsafe extern "C-unwind" {
    #[link_name = "standard_ExecutorStart"]
    fn standard_executor_start(query: *mut pg_sys::QueryDesc, eflags: i32);
    #[cfg(not(feature = "pg18"))]
    #[link_name = "standard_ExecutorRun"]
    fn standard_executor_run(
        query: *mut pg_sys::QueryDesc,
        direction: pg_sys::ScanDirection::Type,
        count: u64,
        execute_once: bool,
    );
    #[cfg(feature = "pg18")]
    #[link_name = "standard_ExecutorRun"]
    fn standard_executor_run(
        query: *mut pg_sys::QueryDesc,
        direction: pg_sys::ScanDirection::Type,
        count: u64,
    );
    #[link_name = "standard_ExecutorFinish"]
    fn standard_executor_finish(query: *mut pg_sys::QueryDesc);
    #[link_name = "standard_ExecutorEnd"]
    fn standard_executor_end(query: *mut pg_sys::QueryDesc);
}

/// Not guarded, like `process_utility`.
unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: i32) {
    // SAFETY: PostgreSQL passes a valid query descriptor, passed on as received.
    unsafe {
        if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 == 0 {
            if super::measure::measuring() && top_level() {
                measure_start(query as usize);
            }
            if CALLBACKS.get().is_some_and(|c| (c.executor_wanted)()) {
                before_executor(query);
            }
        }
        PREVIOUS_START.get().unwrap_or(standard_executor_start)(query, eflags);
    }
}

/// Not guarded, like `process_utility`.
unsafe extern "C-unwind" fn executor_end(query: *mut pg_sys::QueryDesc) {
    // SAFETY: the query descriptor PostgreSQL passes, whose state lives
    // until the next hook (or PostgreSQL) ends it.
    unsafe {
        let measured = super::measure::is_open(query as usize);
        let rows = match (*query).estate.as_ref() {
            Some(estate) if measured => estate.es_processed,
            _ => 0,
        };
        PREVIOUS_END.get().unwrap_or(standard_executor_end)(query);
        if measured {
            measure_end(query as usize, rows);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn before_executor(query: *mut pg_sys::QueryDesc) {
    if let Some(callbacks) = CALLBACKS.get() {
        (callbacks.before_executor)(&Statement(query));
    }
}

/// Runs `f` with `query` on the stack of running statements. Not guarded:
/// an error leaves without popping, and the (sub)transaction's abort takes
/// the stack back (see SUBTRANSACTIONS).
fn running(query: *mut pg_sys::QueryDesc, f: impl FnOnce()) {
    let depth = RUNNING.with(|running| {
        running.try_borrow_mut().map_or(usize::MAX, |mut r| {
            r.push(query as usize);
            r.len() - 1
        })
    });
    f();
    truncate_running(depth);
}

fn truncate_running(depth: usize) {
    RUNNING.with(|running| {
        if let Ok(mut running) = running.try_borrow_mut() {
            running.truncate(depth);
        }
    });
}

/// Each run of a statement, while the callbacks want them (asked unguarded).
unsafe fn maybe_before_run(query: *mut pg_sys::QueryDesc) {
    if wanted() {
        // SAFETY: the query descriptor PostgreSQL passes.
        unsafe { before_run(query) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn before_run(query: *mut pg_sys::QueryDesc) {
    if let Some(callbacks) = CALLBACKS.get() {
        (callbacks.before_run)(&Statement(query));
    }
}

/// The callbacks' `wanted()`, asked outside any error guard (see `Callbacks`).
fn wanted() -> bool {
    CALLBACKS.get().is_some_and(|c| (c.wanted)())
}

unsafe extern "C-unwind" {
    /// Reads the transaction state: called directly (pgrx's guard costs more).
    #[link_name = "IsAbortedTransactionBlockState"]
    fn raw_is_aborted_transaction_block_state() -> bool;
}

/// Not guarded, like `process_utility`: the extension's look comes first,
/// in a guarded function of its own.
unsafe extern "C-unwind" fn post_parse_analyze(
    state: *mut pg_sys::ParseState,
    query: *mut pg_sys::Query,
    jumble: *mut pg_sys::JumbleState,
) {
    // SAFETY: PostgreSQL passes the statement it just analysed; the
    // arguments go on as received. The walk below may raise (stack depth):
    // the error passes through frames that hold nothing to drop, and the
    // relations are a PostgreSQL list, freed with its memory context.
    unsafe {
        if let Some(next) = PREVIOUS_ANALYZE.get() {
            next(state, query, jumble);
        }
        // In a failed transaction only ROLLBACK gets this far, and nothing
        // may be looked up any more.
        if !raw_is_aborted_transaction_block_state() && wanted() {
            let mut relations: *mut pg_sys::List = std::ptr::null_mut();
            collect_relations(query.cast(), (&raw mut relations).cast());
            after_analyze(query, relations);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn after_analyze(query: *mut pg_sys::Query, relations: *mut pg_sys::List) {
    let Some(callback) = CALLBACKS.get().map(|c| c.after_analyze) else {
        return;
    };
    // SAFETY: the list collect_relations made; the utility statement is read
    // by its tag.
    let (relations, session_only) = unsafe {
        let utility = (*query).utilityStmt;
        (
            cells(relations).iter().map(|cell| cell.oid_value).collect(),
            !utility.is_null()
                && matches!(
                    (*utility).type_,
                    pg_sys::NodeTag::T_VariableSetStmt
                        | pg_sys::NodeTag::T_VariableShowStmt
                        | pg_sys::NodeTag::T_DiscardStmt
                        | pg_sys::NodeTag::T_ClosePortalStmt
                        | pg_sys::NodeTag::T_TransactionStmt
                ),
        )
    };
    callback(&Analyzed {
        relations,
        session_only,
    });
}

type Walker = Option<unsafe extern "C-unwind" fn(*mut pg_sys::Node, *mut std::ffi::c_void) -> bool>;

// PostgreSQL's tree walks and list append, called directly (pgrx's bindings
// would turn an error raised inside a walk into a Rust panic, which cannot
// travel back through PostgreSQL's own walker frames).
unsafe extern "C-unwind" {
    #[cfg_attr(feature = "pg15", link_name = "query_tree_walker")]
    #[cfg_attr(not(feature = "pg15"), link_name = "query_tree_walker_impl")]
    fn raw_query_tree_walker(
        query: *mut pg_sys::Query,
        walker: Walker,
        context: *mut std::ffi::c_void,
        flags: i32,
    ) -> bool;
    #[cfg_attr(feature = "pg15", link_name = "expression_tree_walker")]
    #[cfg_attr(not(feature = "pg15"), link_name = "expression_tree_walker_impl")]
    fn raw_expression_tree_walker(
        node: *mut pg_sys::Node,
        walker: Walker,
        context: *mut std::ffi::c_void,
    ) -> bool;
    #[link_name = "lappend_oid"]
    fn raw_lappend_oid(list: *mut pg_sys::List, oid: pg_sys::Oid) -> *mut pg_sys::List;
}

/// A tree walker: the relations a statement's range tables name (views
/// unexpanded), in sub-queries, CTEs and sub-links too; not those its
/// expressions only mention (a `'t'::regclass` runs nothing). `relations`
/// points to the PostgreSQL list it appends to.
unsafe extern "C-unwind" fn collect_relations(
    node: *mut pg_sys::Node,
    relations: *mut std::ffi::c_void,
) -> bool {
    if node.is_null() {
        return false;
    }
    // SAFETY: nodes are read by their tags; `relations` is the caller's list.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_Query => raw_query_tree_walker(
                node.cast(),
                Some(collect_relations),
                relations,
                pg_sys::QTW_EXAMINE_RTES_BEFORE as i32,
            ),
            pg_sys::NodeTag::T_RangeTblEntry => {
                let entry = &*node.cast::<pg_sys::RangeTblEntry>();
                if entry.rtekind == pg_sys::RTEKind::RTE_RELATION {
                    let list = relations.cast::<*mut pg_sys::List>();
                    *list = raw_lappend_oid(*list, entry.relid);
                }
                false
            }
            _ => raw_expression_tree_walker(node, Some(collect_relations), relations),
        }
    }
}

#[cfg(not(feature = "pg18"))]
unsafe extern "C-unwind" fn executor_run(
    query: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    // SAFETY: the query descriptor PostgreSQL passes.
    unsafe { maybe_before_run(query) };
    let top_level = client_run();
    // SAFETY: the arguments as received.
    running(query, || unsafe {
        PREVIOUS_RUN.get().unwrap_or(standard_executor_run)(query, direction, count, execute_once)
    });
    if top_level || (super::measure::lazy() && self::top_level()) {
        super::measure::run_end();
    }
}

#[cfg(feature = "pg18")]
unsafe extern "C-unwind" fn executor_run(
    query: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    // SAFETY: the query descriptor PostgreSQL passes.
    unsafe { maybe_before_run(query) };
    let top_level = client_run();
    // SAFETY: the arguments as received.
    running(query, || unsafe {
        PREVIOUS_RUN.get().unwrap_or(standard_executor_run)(query, direction, count)
    });
    if top_level || (super::measure::lazy() && self::top_level()) {
        super::measure::run_end();
    }
}

unsafe extern "C-unwind" fn executor_finish(query: *mut pg_sys::QueryDesc) {
    let top_level = client_run();
    // SAFETY: the argument as received.
    running(query, || unsafe {
        PREVIOUS_FINISH.get().unwrap_or(standard_executor_finish)(query)
    });
    if top_level || (super::measure::lazy() && self::top_level()) {
        super::measure::run_end();
    }
}

/// A client's statement runs (its ExecutorRun or ExecutorFinish, where its
/// triggers fire): `measure::run` if wanted; true when `run_end` is due.
fn client_run() -> bool {
    let acting = super::measure::acting(false) && top_level();
    if acting {
        // SAFETY: a guarded call.
        unsafe { measure_run(false, true) };
    }
    acting
}

/// Not guarded: it runs while PostgreSQL reports any message, also at
/// times when nothing may be raised; it only notes that an error reached
/// the client, and looks at nothing else.
unsafe extern "C-unwind" fn emit_log(error: *mut pg_sys::ErrorData) {
    // SAFETY: the message being reported, passed on as received.
    unsafe {
        if error
            .as_ref()
            .is_some_and(|e| e.elevel == pg_sys::PGERROR as i32)
        {
            super::measure::error_reported();
        }
        if let Some(next) = PREVIOUS_EMIT_LOG.get() {
            next(error);
        }
    }
}

/// Not guarded: picks the transaction's end among its events (a commit
/// also brings its PRE_COMMIT here), which `transaction_end` handles.
unsafe extern "C-unwind" fn transaction_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    let committed = match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PREPARE => true,
        XACT_EVENT_ABORT => false,
        _ => return,
    };
    // SAFETY: a guarded call.
    unsafe { transaction_end(committed) };
}

#[pg_guard]
unsafe extern "C-unwind" fn transaction_end(committed: bool) {
    truncate_running(0);
    SUBTRANSACTIONS.with_borrow_mut(Vec::clear);
    if !committed {
        super::security::reseed_if_pending();
    }
    // An error that ends the transaction leaves the utility statements it
    // passed through without their frames' end, and fails the client's
    // statement; a procedure's own ROLLBACK (its CALL, or DO, still runs in
    // its active portal) does neither.
    // SAFETY: the portal PostgreSQL runs a statement in, or NULL.
    let by_procedure = unsafe {
        pg_sys::ActivePortal
            .as_ref()
            .is_some_and(|portal| portal.status == pg_sys::PortalStatus::PORTAL_ACTIVE)
    };
    if !committed && !by_procedure {
        UTILITIES.set(0);
        super::measure::abort(None);
    }
    if !by_procedure {
        super::resources::disarm();
    }
    if let Some(callbacks) = CALLBACKS.get() {
        (callbacks.on_transaction_end)(committed);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn subtransaction_event(
    event: pg_sys::SubXactEvent::Type,
    subtransaction: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_START_SUB => {
            let depth = RUNNING.with_borrow(Vec::len);
            SUBTRANSACTIONS.with_borrow_mut(|s| s.push((subtransaction, depth, UTILITIES.get())));
        }
        SUBXACT_EVENT_COMMIT_SUB | SUBXACT_EVENT_ABORT_SUB => {
            let started = SUBTRANSACTIONS.with_borrow_mut(|s| {
                let at = s.iter().rposition(|(id, ..)| *id == subtransaction)?;
                s.drain(at..).next()
            });
            if event == SUBXACT_EVENT_ABORT_SUB {
                super::security::reseed_if_pending();
                if let Some((_, depth, utilities)) = started {
                    truncate_running(depth);
                    UTILITIES.set(utilities);
                }
                super::measure::abort(Some(subtransaction));
            }
        }
        _ => {}
    }
}
