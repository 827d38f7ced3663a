//! One function's calls in row-level security quals, evaluated once per
//! statement: each becomes the output of an InitPlan, as PostgreSQL plans a
//! sub-select `(SELECT f())`, without planning a sub-query for it.
//!
//! A policy written `tenant_id = (SELECT tenancy.current_tenant())` has
//! PostgreSQL plan a whole query for its sub-select with every statement it
//! plans (8,000 instructions of a 144,000-instruction point query), only to
//! make an InitPlan of it and compare the column with its output Param.
//! A policy written `tenant_id = tenancy.current_tenant()` gets the same
//! InitPlan here, built directly, when PostgreSQL looks up the relation the
//! policy protects (`get_relation_info_hook`): after the quals were
//! preprocessed, before they are distributed, matched to indexes and
//! costed, so that everything after sees what the sub-select would have
//! left, an index condition or filter on a Param.
//!
//! Nothing is folded at plan time: the InitPlan calls the function when the
//! statement runs (at its first use, once per execution of a plan, cached
//! or not). A call the hook does not reach (a qual PostgreSQL plans no
//! relation for) stays a call per row, with the same result.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::{c_void, CStr};

/// The function whose calls become InitPlans: schema, name (no arguments)
/// and the C symbol it must be bound to (which only a superuser can bind).
#[derive(Clone, Copy)]
pub struct Function {
    pub schema: &'static CStr,
    pub name: &'static CStr,
    pub symbol: &'static CStr,
}

static PREVIOUS: super::BackendCell<pg_sys::get_relation_info_hook_type> =
    super::BackendCell::new(None);
static FUNCTION: super::BackendCell<Option<Function>> = super::BackendCell::new(None);
/// Its oid as last looked up (InvalidOid: not in this database), until
/// pg_proc or pg_namespace change; None: to look up.
static OID: super::BackendCell<Option<pg_sys::Oid>> = super::BackendCell::new(None);

/// Once per backend, from _PG_init.
pub fn init(function: Function) {
    FUNCTION.set(Some(function));
    // SAFETY: chaining the hook as every extension does, once per backend;
    // the callbacks only forget an oid.
    unsafe {
        PREVIOUS.set(pg_sys::get_relation_info_hook);
        pg_sys::get_relation_info_hook = Some(relation_info);
        for cache in [
            pg_sys::SysCacheIdentifier::PROCOID,
            pg_sys::SysCacheIdentifier::NAMESPACEOID,
        ] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(forget), 0.into());
        }
    }
}

unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    OID.set(None);
}

// PostgreSQL's own, called directly: the mutator runs inside PostgreSQL's
// tree walk, where an error must travel as PostgreSQL raises it (the frames
// it passes hold nothing to drop), never as a Rust panic (see hooks.rs).
unsafe extern "C-unwind" {
    #[cfg_attr(feature = "pg15", link_name = "expression_tree_mutator")]
    #[cfg_attr(not(feature = "pg15"), link_name = "expression_tree_mutator_impl")]
    fn raw_expression_tree_mutator(
        node: *mut pg_sys::Node,
        mutator: Option<
            unsafe extern "C-unwind" fn(*mut pg_sys::Node, *mut c_void) -> *mut pg_sys::Node,
        >,
        context: *mut c_void,
    ) -> *mut pg_sys::Node;
    #[link_name = "contain_var_clause"]
    fn raw_contain_var_clause(node: *mut pg_sys::Node) -> bool;
    #[link_name = "palloc0"]
    fn raw_palloc0(size: usize) -> *mut c_void;
    #[link_name = "lappend"]
    fn raw_lappend(list: *mut pg_sys::List, datum: *mut c_void) -> *mut pg_sys::List;
    #[link_name = "makeTargetEntry"]
    fn raw_make_target_entry(
        expr: *mut pg_sys::Expr,
        resno: pg_sys::AttrNumber,
        resname: *mut std::ffi::c_char,
        resjunk: bool,
    ) -> *mut pg_sys::TargetEntry;
    #[link_name = "get_typavgwidth"]
    fn raw_get_typavgwidth(typid: pg_sys::Oid, typmod: i32) -> i32;
    #[link_name = "SS_make_initplan_output_param"]
    fn raw_make_initplan_output_param(
        root: *mut pg_sys::PlannerInfo,
        resulttype: pg_sys::Oid,
        resulttypmod: i32,
        resultcollation: pg_sys::Oid,
    ) -> *mut pg_sys::Param;
    #[link_name = "SS_make_initplan_from_plan"]
    fn raw_make_initplan_from_plan(
        root: *mut pg_sys::PlannerInfo,
        subroot: *mut pg_sys::PlannerInfo,
        plan: *mut pg_sys::Plan,
        prm: *mut pg_sys::Param,
    );
}

/// Not guarded, like the hooks of hooks.rs: the next hook runs as
/// received, then the relation's security quals, if it has any, are
/// rewritten (which raises only as PostgreSQL's own node building does).
unsafe extern "C-unwind" fn relation_info(
    root: *mut pg_sys::PlannerInfo,
    relation: pg_sys::Oid,
    inherited: bool,
    rel: *mut pg_sys::RelOptInfo,
) {
    // SAFETY: the planner's state for the relation it is looking up; its
    // range table entry is in simple_rte_array at the relation's index.
    unsafe {
        if let Some(previous) = PREVIOUS.get() {
            previous(root, relation, inherited, rel);
        }
        let index = (*rel).relid as usize;
        if (*root).simple_rte_array.is_null() || index >= (*root).simple_rel_array_size as usize {
            return;
        }
        let entry = *(*root).simple_rte_array.add(index);
        if entry.is_null() || (*entry).securityQuals.is_null() {
            return;
        }
        let function = match OID.get() {
            Some(oid) => oid,
            None => look_up(),
        };
        if function == pg_sys::InvalidOid {
            return;
        }
        let mut context = Context { root, function };
        // Each element a list of quals, ANDed (as preprocessing left them).
        // A qual without the relation's columns is evaluated once anyway (a
        // gating qual, such as a tenant schema's pinned policy): left alone.
        for level in cells_mut((*entry).securityQuals) {
            for qual in cells_mut(level.ptr_value.cast()) {
                if raw_contain_var_clause(qual.ptr_value.cast()) {
                    qual.ptr_value = raw_expression_tree_mutator(
                        qual.ptr_value.cast(),
                        Some(hoist),
                        (&raw mut context).cast(),
                    )
                    .cast();
                }
            }
        }
    }
}

/// The cells of a PostgreSQL list, to replace their values (NIL is empty).
///
/// # Safety
/// `list` is NIL or a valid pointer list that outlives the slice.
unsafe fn cells_mut<'a>(list: *mut pg_sys::List) -> &'a mut [pg_sys::ListCell] {
    if list.is_null() {
        return &mut [];
    }
    // SAFETY: a list's `elements` holds `length` cells.
    unsafe { std::slice::from_raw_parts_mut((*list).elements, (*list).length as usize) }
}

struct Context {
    root: *mut pg_sys::PlannerInfo,
    function: pg_sys::Oid,
}

/// The function's oid in this database (InvalidOid: none, or another
/// function under its name), remembered until pg_proc or pg_namespace
/// change. None is looked for where Citus is loaded: there the policy is
/// evaluated per row, on the workers (see api/citus.rs).
#[pg_guard]
unsafe extern "C-unwind" fn look_up() -> pg_sys::Oid {
    let Some(function) = FUNCTION.get() else {
        return pg_sys::InvalidOid;
    };
    let oid = if super::citus::loaded() {
        pg_sys::InvalidOid
    } else {
        find(function)
    };
    OID.set(Some(oid));
    oid
}

fn find(function: Function) -> pg_sys::Oid {
    // ClanguageId (pg_language.dat): only a superuser binds a C symbol.
    const C_LANGUAGE: pg_sys::Oid = pg_sys::Oid::from_u32(13);
    // SAFETY: syscache lookups by name (missing_ok) and by key; the row is
    // released before returning, its prosrc copied out first.
    unsafe {
        let schema = pg_sys::get_namespace_oid(function.schema.as_ptr(), true);
        if schema == pg_sys::InvalidOid {
            return pg_sys::InvalidOid;
        }
        let no_arguments = pg_sys::buildoidvector(std::ptr::null(), 0);
        let tuple = pg_sys::SearchSysCache3(
            pg_sys::SysCacheIdentifier::PROCNAMEARGSNSP as i32,
            pg_sys::Datum::from(function.name.as_ptr()),
            pg_sys::Datum::from(no_arguments),
            pg_sys::Datum::from(schema),
        );
        if tuple.is_null() {
            return pg_sys::InvalidOid;
        }
        let form = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_proc>(tuple);
        let mut null = false;
        let source = pg_sys::SysCacheGetAttr(
            pg_sys::SysCacheIdentifier::PROCNAMEARGSNSP as i32,
            tuple,
            pg_sys::Anum_pg_proc_prosrc as pg_sys::AttrNumber,
            &mut null,
        );
        // Called once per statement, by the leader of a parallel query:
        // it has to be stable (or immutable) and parallel safe.
        let bound = form.prolang == C_LANGUAGE
            && !form.proretset
            && form.provolatile as u8 != pg_sys::PROVOLATILE_VOLATILE
            && form.proparallel as u8 == pg_sys::PROPARALLEL_SAFE
            && !null
            && CStr::from_ptr(pg_sys::text_to_cstring(source.cast_mut_ptr())) == function.symbol;
        let oid = if bound { form.oid } else { pg_sys::InvalidOid };
        pg_sys::ReleaseSysCache(tuple);
        oid
    }
}

/// The mutator: each call of the function (no arguments) becomes the Param
/// an InitPlan of this query level sets.
unsafe extern "C-unwind" fn hoist(
    node: *mut pg_sys::Node,
    context: *mut c_void,
) -> *mut pg_sys::Node {
    if node.is_null() {
        return node;
    }
    // SAFETY: nodes read by their tags; `context` is relation_info's.
    unsafe {
        let context = &*context.cast::<Context>();
        if (*node).type_ == pg_sys::NodeTag::T_FuncExpr {
            let call = node.cast::<pg_sys::FuncExpr>();
            if (*call).funcid == context.function && (*call).args.is_null() && !(*call).funcretset {
                return initplan(context.root, call).cast();
            }
        }
    }
    // SAFETY: the walk goes on below this node, with the same context.
    unsafe { raw_expression_tree_mutator(node, Some(hoist), context) }
}

/// What the planner makes of `(SELECT f())` at this query level: a Result
/// plan computing the call, as an InitPlan of `root`, and its output Param.
///
/// # Safety
/// `root` is the planner's state of the query level the call belongs to.
unsafe fn initplan(
    root: *mut pg_sys::PlannerInfo,
    call: *mut pg_sys::FuncExpr,
) -> *mut pg_sys::Param {
    // SAFETY: zeroed nodes filled as makeNode and the planner fill them;
    // the sub-query has no range table, which is all that set_plan_references
    // and SS_finalize_plan read of its planner state.
    unsafe {
        let query = raw_palloc0(size_of::<pg_sys::Query>()).cast::<pg_sys::Query>();
        (*query).type_ = pg_sys::NodeTag::T_Query;
        (*query).commandType = pg_sys::CmdType::CMD_SELECT;
        let subroot = raw_palloc0(size_of::<pg_sys::PlannerInfo>()).cast::<pg_sys::PlannerInfo>();
        (*subroot).type_ = pg_sys::NodeTag::T_PlannerInfo;
        (*subroot).parse = query;
        (*subroot).glob = (*root).glob;
        (*subroot).query_level = (*root).query_level + 1;
        (*subroot).parent_root = root;
        (*subroot).planner_cxt = pg_sys::CurrentMemoryContext;
        (*subroot).wt_param_id = -1;

        let plan = raw_palloc0(size_of::<pg_sys::Result>()).cast::<pg_sys::Result>();
        (*plan).plan.type_ = pg_sys::NodeTag::T_Result;
        let entry = raw_make_target_entry(call.cast(), 1, std::ptr::null_mut(), false);
        (*plan).plan.targetlist = raw_lappend(std::ptr::null_mut(), entry.cast());
        // One row, costed as the sub-select's Result: the call and the row.
        (*plan).plan.total_cost = pg_sys::cpu_operator_cost + pg_sys::cpu_tuple_cost;
        (*plan).plan.plan_rows = 1.0;
        (*plan).plan.plan_width = raw_get_typavgwidth((*call).funcresulttype, -1);
        // The function is parallel safe (`find`); workers get its value from
        // the leader (Gather's initParam), as for the sub-select's InitPlan.
        (*plan).plan.parallel_safe = true;

        let param =
            raw_make_initplan_output_param(root, (*call).funcresulttype, -1, (*call).funccollid);
        raw_make_initplan_from_plan(root, subroot, plan.cast(), param);
        param
    }
}
