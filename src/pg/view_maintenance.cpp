// A pipeline's view set (view_maintenance.hpp): plans read through pipeline_catalog, statements
// prepared on first use, and each batch's maintenance of the views whose inputs changed.
#include "pg/view_maintenance.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/guc.h"
}

#include <stdexcept>

#include "core/view_plan.hpp"
#include "pg/pipeline_catalog.hpp"
#include "pg/seam.hpp"

namespace sgivm::pg {

namespace {

size_t at(Step step) { return static_cast<size_t>(step); }

std::vector<Statement> statements_of(const std::vector<std::string> &sqls) {
    std::vector<Statement> out;
    for (const std::string &sql : sqls) out.push_back(Statement{sql});
    return out;
}
std::vector<Statement> statements_of(const std::string &sql) {
    return sql.empty() ? std::vector<Statement>{} : std::vector<Statement>{Statement{sql}};
}

MaintainedView view_of(const StoredView &stored) {
    const ViewPlan &p = stored.plan.plan;
    MaintainedView v;
    v.relid = stored.relid;
    v.name = stored.name;
    for (uint32_t relid : stored.plan.input_relids) v.inputs.push_back(static_cast<Oid>(relid));
    v.setup = p.setup;
    for (size_t i = 0; i < stored.plan.input_columns.size() && i < v.inputs.size(); i++)
        for (const std::string &column : stored.plan.input_columns[i]) v.uses.emplace_back(v.inputs[i], column);
    v.populate = p.populate;
    v.state_tables = p.state_tables;
    v.state_setup = p.state_setup;
    v.state_fill = p.state_fill;
    v.captured[at(Step::Fill)] = statements_of(p.fill_affected);
    v.captured[at(Step::State)] = statements_of(p.state_apply);
    v.captured[at(Step::Compute)] = statements_of(p.compute);
    v.captured[at(Step::Update)] = statements_of(p.update);
    v.captured[at(Step::Remove)] = statements_of(p.remove);
    v.captured[at(Step::Recompute)] = statements_of(p.recompute);
    v.captured[at(Step::ReplaceRemove)] = statements_of(p.replace_remove);
    v.captured[at(Step::ReplaceInsert)] = statements_of(p.replace_insert);
    v.uncaptured[at(Step::Update)] = statements_of(p.uncaptured.update);
    v.uncaptured[at(Step::Remove)] = statements_of(p.uncaptured.remove);
    v.uncaptured[at(Step::Recompute)] = statements_of(p.uncaptured.recompute);
    v.uncaptured[at(Step::ReplaceRemove)] = statements_of(p.uncaptured.replace_remove);
    v.uncaptured[at(Step::ReplaceInsert)] = statements_of(p.uncaptured.replace_insert);
    return v;
}

// A statement of view `view` failed: its error names the view (the statement's own message
// rarely does) and the call that removes it. Called in the catch block of `e`, which it rethrows.
[[noreturn]] void fail_naming_view(PgError &e, const char *doing, const std::string &view) {
    // a full disk is not the view's fault: removing it is not the way out
    bool disk_full = e.data() && e.data()->sqlerrcode == ERRCODE_DISK_FULL;
    e.frame(std::string(doing) + " view " + view + ": ", disk_full ? "" : drop_view_advice(view));
    throw;
}

// Runs the statements (prepared once); returns the rows they wrote. PostgreSQL-style.
uint64 run_statements(std::vector<Statement> &statements, const char *what, const MaintainedView &v) {
    uint64 rows = 0;
    for (Statement &st : statements) {
        if (!st.plan) {
            st.plan = SPI_prepare(st.sql.c_str(), 0, nullptr);
            if (!st.plan)
                elog(ERROR, "stategrid_ivm: could not prepare \"%s\": %s", st.sql.c_str(), SPI_result_code_string(SPI_result));
            SPI_keepplan(st.plan);
        }
        if (SPI_execute_plan(st.plan, nullptr, nullptr, false, 0) < 0)
            elog(ERROR, "stategrid_ivm: %s %s failed", what, v.name.c_str());
        rows += SPI_processed;
    }
    return rows;
}

void run_all(const std::vector<std::string> &sqls) {
    for (const std::string &sql : sqls)
        if (SPI_execute(sql.c_str(), false, 0) < 0) elog(ERROR, "stategrid_ivm: %s failed", sql.c_str());
}

// Each table of the view's kept state gets REPLICA IDENTITY FULL where it has no identity (made
// before this was done, or now): a publication FOR ALL TABLES or FOR TABLES IN SCHEMA covers
// them, and PostgreSQL refuses an UPDATE or DELETE of a published table without one -- the
// pipeline would stop at its next batch. Their unique keys admit NULL group values, so no index
// of theirs can be the identity. PostgreSQL-style.
void identify_state_rows(const MaintainedView &v) {
    for (const std::string &t : v.state_tables) {
        Oid type = TEXTOID;
        Datum arg = CStringGetTextDatum(t.c_str());
        if (SPI_execute_with_args("SELECT c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
                                  "WHERE i.indrelid = c.oid AND i.indisprimary) "
                                  "FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)",
                                  1, &type, &arg, nullptr, true, 1) != SPI_OK_SELECT)
            elog(ERROR, "stategrid_ivm: could not look at table %s", t.c_str());
        bool isnull = true;
        bool lacking = SPI_processed == 1 && DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        if (!lacking || isnull) continue;
        std::string sql = "ALTER TABLE " + t + " REPLICA IDENTITY FULL";
        if (SPI_execute(sql.c_str(), false, 0) != SPI_OK_UTILITY) elog(ERROR, "stategrid_ivm: %s failed", sql.c_str());
    }
}

// The view's kept state exists (made and filled from its inputs, as they are before this batch,
// where a table of it is missing: a view planned by an update, or rebuilt). PostgreSQL-style.
void ensure_state(MaintainedView &v) {
    if (v.state_checked || v.state_tables.empty()) return;
    bool missing = false;
    for (const std::string &t : v.state_tables) {
        Oid type = TEXTOID;
        Datum arg = CStringGetTextDatum(t.c_str());
        if (SPI_execute_with_args("SELECT pg_catalog.to_regclass($1) IS NULL", 1, &type, &arg, nullptr, true, 1) != SPI_OK_SELECT ||
            SPI_processed != 1)
            elog(ERROR, "stategrid_ivm: could not look for table %s", t.c_str());
        bool isnull;
        missing = missing || DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    if (missing) {
        run_all(v.state_setup);
        run_all(v.state_fill);
    }
    identify_state_rows(v);
    v.state_checked = true;
}

void analyze(const std::string &table) {
    std::string sql = "ANALYZE " + table;
    if (SPI_execute(sql.c_str(), false, 0) < 0) elog(ERROR, "stategrid_ivm: %s failed", sql.c_str());
}

// One view's maintenance over a batch whose changes to its inputs are `delta_rows` rows;
// returns the rows it wrote. PostgreSQL-style.
uint64 maintain_view(MaintainedView &v, uint64 delta_rows) {
    // (its working tables exist: create_working_tables made them for this view set)
    run_statements(v.statements(Step::Fill), "finding the rows to maintain of", v);
    // The planner must know how many keys or groups a batch touched (a few, or most of the
    // view): a work table without statistics passes for thousands of rows.
    analyze(affected_table(v.relid));
    run_statements(v.statements(Step::State), "folding the changes into the state of", v);
    // Rows of the scope that changed are replaced (diff); when the input changes are many
    // against the recomputed scope (a backlog, a bulk load), most of it changes anyway and the
    // whole scope is replaced from the work table instead.
    bool replace = false;
    if (v.has(Step::Compute)) {
        uint64 recomputed = run_statements(v.statements(Step::Compute), "recomputing the rows of", v);
        replace = v.has(Step::ReplaceInsert) && delta_rows >= 10000 && delta_rows * 4 >= recomputed;
        // the diff by key joins the recomputed rows with the view: the planner must know
        // whether they are ten or a hundred thousand
        if (!replace && v.has(Step::Update)) analyze(new_rows_table(v.relid));
    }
    uint64 written = 0;
    for (Step step : replace ? std::vector<Step>{Step::ReplaceRemove, Step::ReplaceInsert}
                             : std::vector<Step>{Step::Update, Step::Remove, Step::Recompute})
        written += run_statements(v.statements(step), "maintaining", v);
    return written;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> named_statements(const StoredViewPlan &plan) {
    static const char *const names[kSteps] = {"fill_affected", "state_apply",    "compute",       "update",
                                              "remove",        "recompute",      "replace_remove", "replace_insert"};
    MaintainedView v = view_of(StoredView{InvalidOid, "", plan});
    std::vector<std::pair<std::string, std::string>> out;
    for (size_t i = 0; i < kSteps; i++) {
        for (const Statement &st : v.captured[i])
            if (!st.sql.empty()) out.emplace_back(names[i], st.sql);
        for (const Statement &st : v.uncaptured[i])
            if (!st.sql.empty()) out.emplace_back(std::string(names[i]) + " (uncaptured)", st.sql);
    }
    return out;
}

std::string drop_view_advice(const std::string &view) {
    std::string literal;
    for (char c : view) literal += c == '\'' ? std::string("''") : std::string(1, c);
    return "; SELECT stategrid_ivm.drop_view('" + literal + "') removes the view from the pipeline, which then continues";
}

bool MaintainedView::has(const std::array<std::vector<Statement>, kSteps> &set, Step step) {
    const std::vector<Statement> &s = set[at(step)];
    return !s.empty() && !s[0].sql.empty();
}

std::vector<Statement> &MaintainedView::statements(Step step) {
    if (!read_by_views && has(uncaptured, step)) return uncaptured[at(step)];
    return captured[at(step)];
}

void ViewSet::free_statements() {
    pg_call([&] {
        for (MaintainedView &v : views_)
            for (auto *set : {&v.captured, &v.uncaptured})
                for (std::vector<Statement> &step : *set)
                    for (Statement &st : step)
                        if (st.plan) SPI_freeplan(st.plan);
    });
}

void ViewSet::load(int32 pipeline_id, int64 version) {
    free_statements();
    views_.clear();
    for (const StoredView &stored : load_view_plans(pipeline_id)) views_.push_back(view_of(stored));
    for (MaintainedView &v : views_)
        for (const MaintainedView &reader : views_)
            for (Oid in : reader.inputs) v.read_by_views = v.read_by_views || in == v.relid;
    version_ = version;
}

bool ViewSet::read(Oid table) const {
    for (const MaintainedView &v : views_)
        for (Oid in : v.inputs)
            if (in == table) return true;
    return false;
}

std::vector<std::string> ViewSet::readers_of(Oid table, const std::string &column) const {
    std::vector<std::string> readers;
    for (const MaintainedView &v : views_)
        for (const auto &use : v.uses)
            if (use.first == table && use.second == column && (readers.empty() || readers.back() != v.name))
                readers.push_back(v.name);
    return readers;
}

void ViewSet::create_working_tables() {
    if (working_tables_version_ == version_) return;
    for (const MaintainedView &v : views_) {
        // Made anew for a new view set: a view planned again (by an update) may have a working
        // table of another shape than its old plan made in this session.
        std::vector<std::string> drop;
        for (const std::string &t : {delta_table(v.relid), affected_table(v.relid), new_rows_table(v.relid)})
            drop.push_back("DROP TABLE IF EXISTS " + t);
        try {
            pg_call([&] {
                for (const std::string &sql : drop)
                    if (SPI_execute(sql.c_str(), false, 0) < 0) elog(ERROR, "stategrid_ivm: %s failed", sql.c_str());
                for (const std::string &sql : v.setup)
                    if (SPI_execute(sql.c_str(), false, 0) < 0) elog(ERROR, "stategrid_ivm: %s failed", sql.c_str());
            });
        } catch (PgError &e) {
            fail_naming_view(e, "preparing", v.name);
        }
    }
    working_tables_version_ = version_;
}

void ViewSet::discard_working_tables() {
    pg_call([] {
        if (SPI_execute("DISCARD TEMP", false, 0) != SPI_OK_UTILITY) elog(ERROR, "stategrid_ivm: DISCARD TEMP failed");
    });
    working_tables_version_ = -1;
}

void ViewSet::ensure_states() {
    for (MaintainedView &v : views_) {
        try {
            pg_call([&] { ensure_state(v); });
        } catch (PgError &e) {
            fail_naming_view(e, "making the kept state of", v.name);
        }
    }
}

void ViewSet::maintain(std::map<Oid, uint64> changed) {
    if (views_.empty()) return;
    uint64 batch_rows = 0;
    for (const auto &c : changed) batch_rows += c.second;
    // The work tables' statistics need the number of rows and a rough idea of their values: a
    // small sample (3,000 rows) is enough, and cheap on every batch. A small batch reads a few
    // groups' rows, cached: index scans are cheaper than the planner's default page costs say
    // (a large one reads much of its tables, where the defaults choose well).
    // (SET LOCAL, without parsing a statement)
    pg_call([&] {
        set_config_option("default_statistics_target", "10", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, ERROR,
                          false);
        // JIT compiles the long expressions of the delta rules (a ranking's key comparisons)
        // for seconds, to run them over a few rows: each statement's plan is estimated big.
        set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, ERROR, false);
        if (batch_rows < 10000)
            set_config_option("random_page_cost", "1.1", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, ERROR,
                              false);
    });
    // Views write their own deltas for the views above them.
    for (MaintainedView &v : views_) {
        uint64 delta_rows = 0;
        for (Oid in : v.inputs) delta_rows += changed[in];
        changed[v.relid] = 0;
        if (delta_rows == 0) continue;
        try {
            changed[v.relid] = pg_call([&] {
                ensure_state(v);
                return maintain_view(v, delta_rows);
            });
        } catch (PgError &e) {
            fail_naming_view(e, "maintaining", v.name);
        }
    }
}

void ViewSet::populate() {
    for (MaintainedView &v : views_) {
        std::string del = "DELETE FROM " + v.name;
        try {
            pg_call([&] {
                run_all(v.state_setup);
                run_all(v.state_fill);
                identify_state_rows(v);
                if (SPI_execute(del.c_str(), false, 0) != SPI_OK_DELETE) elog(ERROR, "stategrid_ivm: could not empty %s", v.name.c_str());
                if (SPI_execute(v.populate.c_str(), false, 0) != SPI_OK_INSERT) elog(ERROR, "stategrid_ivm: could not fill %s", v.name.c_str());
            });
            v.state_checked = true;
        } catch (PgError &e) {
            fail_naming_view(e, "backfilling", v.name);
        }
    }
}

}  // namespace sgivm::pg
