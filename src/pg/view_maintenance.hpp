// The views of a pipeline as its worker maintains them: their plans read from the catalog, the
// statements prepared once per session, and the choice between captured and uncaptured ones.
#pragma once

extern "C" {
#include "postgres.h"

#include "executor/spi.h"
}

#include <array>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/view_plan.hpp"

namespace sgivm::pg {

// The kinds of maintenance statement of a view's plan (ViewPlan), in the order a batch runs them.
// State folds the input deltas into the view's kept state (differential plans only).
enum class Step { Fill, State, Compute, Update, Remove, Recompute, ReplaceRemove, ReplaceInsert };
constexpr size_t kSteps = 8;

// A statement of a view's plan, prepared on first use and kept for the session.
struct Statement {
    std::string sql;
    SPIPlanPtr plan = nullptr;
};

// A maintained view as the worker runs it.
struct MaintainedView {
    Oid relid = InvalidOid;
    std::string name;
    std::vector<Oid> inputs;
    std::vector<std::string> setup;                 // its working tables (idempotent)
    std::vector<std::pair<Oid, std::string>> uses;  // (input table, column) the query reads
    std::string populate;
    // Kept state: its tables, made and filled once (ensure_state) where they are missing.
    std::vector<std::string> state_tables, state_setup, state_fill;
    bool state_checked = false;  // this session found or made the state (in a committed batch)
    bool read_by_views = false;  // another view reads this one: its changes are captured
    // The plan's statements by step, writing the view's changes to its delta table (captured)
    // or not; plans of 0.2.0 have neither update nor uncaptured ones, and plans of 0.1.0 no
    // compute either.
    std::array<std::vector<Statement>, kSteps> captured, uncaptured;

    bool has(Step step) const { return has(captured, step); }
    // The step's statements, uncaptured when nothing reads this view and the plan has them.
    std::vector<Statement> &statements(Step step);

private:
    static bool has(const std::array<std::vector<Statement>, kSteps> &set, Step step);
};

class ViewSet {
public:
    // Reads the pipeline's views from the catalog (forgetting the prepared statements of the
    // previous set); `version` is the pipeline's views_version they were read at.
    void load(int32 pipeline_id, int64 version);
    int64 version() const { return version_; }
    void forget_version() { version_ = -1; }  // the next step reads the set again
    bool empty() const { return views_.empty(); }
    const std::vector<MaintainedView> &views() const { return views_; }

    // Whether a view reads `table` (a mirror whose changes must then be captured).
    bool read(Oid table) const;
    // The views that read `column` of `table`, in order.
    std::vector<std::string> readers_of(Oid table, const std::string &column) const;

    // The views' working tables, created once per view set and session (runs as the owner,
    // before the restricted operation: temporary tables).
    void create_working_tables();
    // After an abort, whose rollback took the working tables created in its transaction.
    void working_tables_lost() {
        working_tables_version_ = -1;
        for (MaintainedView &v : views_) v.state_checked = false;  // (its creation may have been undone)
    }
    // DISCARD TEMP: every temporary table of the session goes (the mirrors' delta tables too,
    // which they make again), so that the next batch copies the tables as they are now.
    void discard_working_tables();

    // Before the mirrors: the kept state of every view, made and filled where it is missing
    // (from its inputs as they are before the batch, which the batch's deltas then fold into).
    void ensure_states();
    // After the mirrors: every view whose inputs changed (rows captured per input table, in
    // this batch), in dependency order, recomputed over the keys or groups the changes touched.
    void maintain(std::map<Oid, uint64> changed);
    // The backfill: every view emptied and filled again from its inputs.
    void populate();

private:
    void free_statements();

    std::vector<MaintainedView> views_;
    int64 version_ = -1;
    int64 working_tables_version_ = -1;  // version_ the views' working tables exist for
};

// The statements of a stored plan in the order a batch runs them, each with its step's name
// ("compute", then "compute (uncaptured)"): what add_view's dry run runs (view_dry_run.cpp).
std::vector<std::pair<std::string, std::string>> named_statements(const StoredViewPlan &plan);

// The end of the error of a view that fails: the call that removes just that view (the rest of
// the pipeline waits for it meanwhile).
std::string drop_view_advice(const std::string &view);

}  // namespace sgivm::pg
