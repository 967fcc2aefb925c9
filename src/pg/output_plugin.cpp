// The logical decoding output plugin `stategrid_ivm`: turns the WAL of the chosen tables into
// the change stream of docs/change-format.md (binary), or its readable text form.
//
// Each callback first gathers what it needs from PostgreSQL into plain palloc'd data (where a
// PostgreSQL error may longjmp freely), then encodes with the C++ core inside run_cpp (where
// a C++ exception becomes an ereport), then hands the bytes to the output buffer.
extern "C" {
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/output_plugin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/varlena.h"
}

#include <string>
#include <unordered_map>

#include "core/change_format.hpp"
#include "pg/seam.hpp"

using namespace sgivm;

namespace {

// What the plugin remembers about one relation for the whole decoding session.
struct RelEntry {
    Oid relid;         // hash key
    bool valid;        // false after a relcache invalidation: rebuild before use
    bool emit;         // part of the requested table set
    TransactionId relation_sent_xid;  // relation message already sent in this transaction
    char *nspname;
    char *relname;
    int ncols;              // emitted columns (not dropped, not generated)
    AttrNumber *attnums;    // their attribute numbers
    ValueKind *kinds;       // how each travels
    bool *is_key;           // replica identity (primary key by default)
    FmgrInfo *out_funcs;    // for Text columns that are not text/varchar
    bool *raw_text;         // text/varchar: bytes sent as they are, no output function
    bool *varlena;          // attlen -1: may be an out-of-line TOAST pointer
    int natts;              // width of the tuple descriptor
    Datum *values;          // deform buffers, natts long
    bool *nulls;
    char replident;
    uint32_t generation;    // bumps on rebuild, so the text form's relation copy stays current
};

// One value ready for the encoder: plain data only.
struct WireValue {
    ValueKind kind;
    int64_t integer;
    const char *text;
    size_t len;
};

struct PluginOptions {
    bool text_format = false;
    bool filter_tables = false;
    List *table_names = NIL;  // char * "schema.name" or "name"
    Oid *relids = nullptr;
    int nrelids = 0;
    bool skip_any_origin = false;
    RepOriginId skip_origin = InvalidRepOriginId;
};

struct PluginState {
    PluginOptions opts;
    MemoryContext change_cxt;  // reset after every change
    bool xact_begun;           // begin message written for the current transaction
    WireValue *wire;           // scratch, sized for the widest relation seen
    int wire_cap;
};

// Process-lifetime state. One backend decodes at most one slot at a time, and the relation
// cache must outlive an aborted decoding call (its invalidation callback stays registered).
MemoryContext rel_cache_cxt = nullptr;
HTAB *rel_cache = nullptr;
bool invalidation_registered = false;
Encoder encoder;
std::string text_out;
std::unordered_map<uint32_t, RelationMessage> text_relations;  // for the text form's names

void invalidate_rel(Datum, Oid relid) {
    if (!rel_cache) return;
    if (relid == InvalidOid) {
        HASH_SEQ_STATUS st;
        hash_seq_init(&st, rel_cache);
        while (RelEntry *e = static_cast<RelEntry *>(hash_seq_search(&st))) e->valid = false;
        return;
    }
    if (RelEntry *e = static_cast<RelEntry *>(hash_search(rel_cache, &relid, HASH_FIND, nullptr)))
        e->valid = false;
}

void reset_rel_cache() {
    if (!rel_cache_cxt)
        rel_cache_cxt =
            AllocSetContextCreate(CacheMemoryContext, "stategrid_ivm relations", ALLOCSET_DEFAULT_SIZES);
    rel_cache = nullptr;
    MemoryContextReset(rel_cache_cxt);
    HASHCTL ctl;
    ctl.keysize = sizeof(Oid);
    ctl.entrysize = sizeof(RelEntry);
    ctl.hcxt = rel_cache_cxt;
    rel_cache = hash_create("stategrid_ivm relation cache", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    if (!invalidation_registered) {
        CacheRegisterRelcacheCallback(invalidate_rel, (Datum)0);
        invalidation_registered = true;
    }
}

ValueKind kind_for_type(Oid type) {
    switch (type) {
        case INT2OID:
        case INT4OID: return ValueKind::Int32;
        case INT8OID: return ValueKind::Int64;
        case TIMESTAMPOID: return ValueKind::Timestamp;
        case TIMESTAMPTZOID: return ValueKind::TimestampTz;
        case DATEOID: return ValueKind::Date;
        default: return ValueKind::Text;
    }
}

bool wanted(const PluginOptions &o, Relation rel, const char *nspname, const char *relname) {
    if (!o.filter_tables) return true;
    Oid relid = RelationGetRelid(rel);
    for (int i = 0; i < o.nrelids; i++)
        if (o.relids[i] == relid) return true;
    ListCell *lc;
    foreach (lc, o.table_names) {
        const char *n = static_cast<const char *>(lfirst(lc));
        const char *dot = strchr(n, '.');
        if (dot) {
            if (strncmp(n, nspname, dot - n) == 0 && nspname[dot - n] == '\0' && strcmp(dot + 1, relname) == 0)
                return true;
        } else if (strcmp(n, relname) == 0) {
            return true;
        }
    }
    return false;
}

// Builds (or rebuilds) the cache entry of a relation. PostgreSQL calls only.
RelEntry *get_rel_entry(PluginState *st, Relation rel) {
    Oid relid = RelationGetRelid(rel);
    bool found;
    RelEntry *e = static_cast<RelEntry *>(hash_search(rel_cache, &relid, HASH_ENTER, &found));
    if (found && e->valid) return e;
    uint32_t generation = found ? e->generation + 1 : 0;
    memset(reinterpret_cast<char *>(e) + sizeof(Oid), 0, sizeof(RelEntry) - sizeof(Oid));
    e->generation = generation;
    MemoryContext old = MemoryContextSwitchTo(rel_cache_cxt);
    e->nspname = get_namespace_name(RelationGetNamespace(rel));
    e->relname = pstrdup(RelationGetRelationName(rel));
    e->emit = wanted(st->opts, rel, e->nspname, e->relname);
    e->relation_sent_xid = InvalidTransactionId;
    e->replident = rel->rd_rel->relreplident;
    TupleDesc desc = RelationGetDescr(rel);
    e->natts = desc->natts;
    e->values = static_cast<Datum *>(palloc(sizeof(Datum) * Max(desc->natts, 1)));
    e->nulls = static_cast<bool *>(palloc(sizeof(bool) * Max(desc->natts, 1)));
    e->attnums = static_cast<AttrNumber *>(palloc(sizeof(AttrNumber) * Max(desc->natts, 1)));
    e->kinds = static_cast<ValueKind *>(palloc(sizeof(ValueKind) * Max(desc->natts, 1)));
    e->is_key = static_cast<bool *>(palloc0(sizeof(bool) * Max(desc->natts, 1)));
    e->out_funcs = static_cast<FmgrInfo *>(palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1)));
    e->raw_text = static_cast<bool *>(palloc0(sizeof(bool) * Max(desc->natts, 1)));
    e->varlena = static_cast<bool *>(palloc0(sizeof(bool) * Max(desc->natts, 1)));
    if (e->emit) {
        Bitmapset *key = nullptr;
        Oid keyidx = RelationGetReplicaIndex(rel);
        if (!OidIsValid(keyidx)) keyidx = RelationGetPrimaryKeyIndex(rel);
        if (OidIsValid(keyidx)) {
            Relation idx = RelationIdGetRelation(keyidx);
            for (int i = 0; i < idx->rd_index->indnkeyatts; i++)
                key = bms_add_member(key, idx->rd_index->indkey.values[i]);
            RelationClose(idx);
        }
        for (int i = 0; i < desc->natts; i++) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (att->attisdropped || att->attgenerated) continue;
            int c = e->ncols++;
            e->attnums[c] = att->attnum;
            e->kinds[c] = kind_for_type(att->atttypid);
            e->is_key[c] = bms_is_member(att->attnum, key);
            e->varlena[c] = att->attlen == -1;
            if (e->kinds[c] == ValueKind::Text) {
                if (att->atttypid == TEXTOID || att->atttypid == VARCHAROID) {
                    e->raw_text[c] = true;
                } else {
                    Oid func;
                    bool varlena;
                    getTypeOutputInfo(att->atttypid, &func, &varlena);
                    fmgr_info_cxt(func, &e->out_funcs[c], rel_cache_cxt);
                }
            }
        }
    }
    MemoryContextSwitchTo(old);
    e->valid = true;
    if (e->ncols > st->wire_cap) {
        st->wire_cap = Max(e->ncols, 2 * st->wire_cap);
        st->wire = static_cast<WireValue *>(
            MemoryContextAlloc(GetMemoryChunkContext(st), sizeof(WireValue) * st->wire_cap));
    }
    return e;
}

// Reads one tuple into wire values (all columns, or only key columns). PostgreSQL calls only;
// allocations go to the per-change context.
int gather_values(PluginState *st, RelEntry *e, HeapTuple tuple, bool key_only, bool toast_marker) {
    int n = 0;
    for (int c = 0; c < e->ncols; c++) {
        if (key_only && !e->is_key[c]) continue;
        int a = e->attnums[c] - 1;
        WireValue &w = st->wire[n++];
        w.integer = 0;
        w.text = nullptr;
        w.len = 0;
        if (e->nulls[a]) {
            w.kind = ValueKind::Null;
            continue;
        }
        Datum d = e->values[a];
        switch (e->kinds[c]) {
            case ValueKind::Int32:
                w.kind = ValueKind::Int32;
                w.integer = DatumGetInt32(d);  // an int2 Datum is sign-extended, so this holds
                break;
            case ValueKind::Int64:
            case ValueKind::Timestamp:
            case ValueKind::TimestampTz:
                w.kind = e->kinds[c];
                w.integer = DatumGetInt64(d);
                break;
            case ValueKind::Date:
                w.kind = ValueKind::Date;
                w.integer = DatumGetInt32(d);
                break;
            default: {
                // An UPDATE that left an out-of-line value alone logs only its TOAST pointer,
                // which cannot be read here: say so, the consumer keeps the old value.
                if (e->varlena[c] && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(d))) {
                    w.kind = toast_marker ? ValueKind::UnchangedToast : ValueKind::Null;
                    break;
                }
                struct varlena *v = reinterpret_cast<struct varlena *>(DatumGetPointer(d));
                w.kind = ValueKind::Text;
                if (e->raw_text[c]) {
                    struct varlena *t = pg_detoast_datum_packed(v);
                    w.text = VARDATA_ANY(t);
                    w.len = VARSIZE_ANY_EXHDR(t);
                } else {
                    char *s = OutputFunctionCall(&e->out_funcs[c], d);
                    w.text = s;
                    w.len = strlen(s);
                }
                break;
            }
        }
    }
    return n;
}

void encode_wire(const WireValue *w, int n) {
    for (int i = 0; i < n; i++) {
        switch (w[i].kind) {
            case ValueKind::Null: encoder.value_null(); break;
            case ValueKind::UnchangedToast: encoder.value_unchanged_toast(); break;
            case ValueKind::Text: encoder.value_text(std::string_view(w[i].text, w[i].len)); break;
            default: encoder.value_int(w[i].kind, w[i].integer); break;
        }
    }
}

// Writes what the encoder holds: the bytes, or their text form.
void write_encoded(LogicalDecodingContext *ctx, bool last) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    const std::string *out = &encoder.bytes();
    if (st->opts.text_format) {
        pg::run_cpp([&] {
            Message m = decode(encoder.bytes());
            if (m.kind == MessageKind::Relation) {
                text_relations[m.relation.relid] = m.relation;
                text_out.clear();
                return;
            }
            text_out = format_text(m, [](uint32_t relid) -> const RelationMessage * {
                auto it = text_relations.find(relid);
                return it == text_relations.end() ? nullptr : &it->second;
            });
        });
        if (text_out.empty()) return;  // relation messages are implied in the text form
        out = &text_out;
    }
    OutputPluginPrepareWrite(ctx, last);
    appendBinaryStringInfo(ctx->out, out->data(), static_cast<int>(out->size()));
    OutputPluginWrite(ctx, last);
}

void ensure_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    if (st->xact_begun) return;
    st->xact_begun = true;
    BeginMessage b;
    b.xid = txn->xid;
    b.commit_time = txn->xact_time.commit_time;
    b.final_lsn = txn->final_lsn;
    pg::run_cpp([&] {
        encoder.clear();
        encoder.begin(b);
    });
    write_encoded(ctx, false);
}

void ensure_relation(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, RelEntry *e) {
    if (e->relation_sent_xid == txn->xid) return;
    e->relation_sent_xid = txn->xid;
    Relation rel = RelationIdGetRelation(e->relid);
    if (!RelationIsValid(rel)) elog(ERROR, "stategrid_ivm: could not open relation %u", e->relid);
    TupleDesc desc = RelationGetDescr(rel);
    int n = e->ncols;
    const char **names = static_cast<const char **>(palloc(sizeof(char *) * Max(n, 1)));
    Oid *types = static_cast<Oid *>(palloc(sizeof(Oid) * Max(n, 1)));
    int32 *typmods = static_cast<int32 *>(palloc(sizeof(int32) * Max(n, 1)));
    for (int c = 0; c < n; c++) {
        Form_pg_attribute att = TupleDescAttr(desc, e->attnums[c] - 1);
        names[c] = pstrdup(NameStr(att->attname));
        types[c] = att->atttypid;
        typmods[c] = att->atttypmod;
    }
    RelationClose(rel);
    pg::run_cpp([&] {
        RelationMessage m;
        m.relid = e->relid;
        m.schema = e->nspname;
        m.name = e->relname;
        m.columns.reserve(n);
        for (int c = 0; c < n; c++) m.columns.push_back(Column{names[c], types[c], typmods[c], e->is_key[c]});
        encoder.clear();
        encoder.relation(m);
    });
    write_encoded(ctx, false);
}

// ---- callbacks ---------------------------------------------------------------------------

void parse_options(LogicalDecodingContext *ctx, PluginOptions *o) {
    ListCell *lc;
    foreach (lc, ctx->output_plugin_options) {
        DefElem *el = static_cast<DefElem *>(lfirst(lc));
        const char *val = el->arg ? strVal(el->arg) : nullptr;
        if (strcmp(el->defname, "format") == 0) {
            if (val && strcmp(val, "text") == 0)
                o->text_format = true;
            else if (val && strcmp(val, "binary") == 0)
                o->text_format = false;
            else
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("invalid value \"%s\" for option \"format\" of output plugin stategrid_ivm",
                                       val ? val : "(null)"),
                                errhint("Use 'binary' or 'text'.")));
        } else if (strcmp(el->defname, "tables") == 0 || strcmp(el->defname, "relids") == 0) {
            List *items = NIL;
            if (!val || !SplitIdentifierString(pstrdup(val), ',', &items))
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("invalid list \"%s\" for option \"%s\" of output plugin stategrid_ivm",
                                       val ? val : "(null)", el->defname)));
            o->filter_tables = true;
            if (el->defname[0] == 't') {
                o->table_names = list_concat(o->table_names, items);
            } else {
                size_t want = sizeof(Oid) * (o->nrelids + list_length(items) + 1);
                o->relids = static_cast<Oid *>(o->relids ? repalloc(o->relids, want) : palloc(want));
                ListCell *ic;
                foreach (ic, items) {
                    const char *s = static_cast<const char *>(lfirst(ic));
                    char *end;
                    unsigned long v = strtoul(s, &end, 10);
                    if (*s == '\0' || *end != '\0' || v == 0 || v > PG_UINT32_MAX)
                        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                        errmsg("invalid relation OID \"%s\" in option \"relids\"", s)));
                    o->relids[o->nrelids++] = static_cast<Oid>(v);
                }
            }
        } else if (strcmp(el->defname, "skip-origin") == 0) {
            if (!val || *val == '\0')
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("option \"skip-origin\" needs a replication origin name or 'any'")));
            if (strcmp(val, "any") == 0) {
                o->skip_any_origin = true;
            } else {
                if (!IsTransactionState())
                    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                    errmsg("option \"skip-origin\" can name an origin only in SQL decoding functions"),
                                    errhint("Use 'any' to skip every change that has a replication origin.")));
                o->skip_origin = replorigin_by_name(val, false);
            }
        } else {
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("unrecognized option \"%s\" for output plugin stategrid_ivm", el->defname),
                            errhint("Valid options are format ('binary' or 'text'), tables, relids and skip-origin.")));
        }
    }
}

}  // namespace

extern "C" {

static void sg_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init) {
    PluginState *st = static_cast<PluginState *>(MemoryContextAllocZero(ctx->context, sizeof(PluginState)));
    new (&st->opts) PluginOptions();
    ctx->output_plugin_private = st;
    st->change_cxt = AllocSetContextCreate(ctx->context, "stategrid_ivm change", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(ctx->context);
    parse_options(ctx, &st->opts);
    MemoryContextSwitchTo(old);
    opt->output_type = st->opts.text_format ? OUTPUT_PLUGIN_TEXTUAL_OUTPUT : OUTPUT_PLUGIN_BINARY_OUTPUT;
    opt->receive_rewrites = false;
    reset_rel_cache();
    pg::run_cpp([] { text_relations.clear(); });
}

static void sg_shutdown(LogicalDecodingContext *ctx) {
    reset_rel_cache();
}

static void sg_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn) {
    static_cast<PluginState *>(ctx->output_plugin_private)->xact_begun = false;
}

static void sg_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    if (!st->xact_begun) return;  // nothing of interest in this transaction
    CommitMessage c;
    c.commit_lsn = commit_lsn;
    c.end_lsn = txn->end_lsn;
    c.commit_time = txn->xact_time.commit_time;
    pg::run_cpp([&] {
        encoder.clear();
        encoder.commit(c);
    });
    write_encoded(ctx, true);
}

static void sg_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation relation,
                      ReorderBufferChange *change) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    RelEntry *e = get_rel_entry(st, relation);
    if (!e->emit) return;

    MessageKind kind;
    switch (change->action) {
        case REORDER_BUFFER_CHANGE_INSERT: kind = MessageKind::Insert; break;
        case REORDER_BUFFER_CHANGE_UPDATE: kind = MessageKind::Update; break;
        case REORDER_BUFFER_CHANGE_DELETE: kind = MessageKind::Delete; break;
        default: return;
    }
    ensure_begin(ctx, txn);
    ensure_relation(ctx, txn, e);

    MemoryContext old = MemoryContextSwitchTo(st->change_cxt);
    TupleDesc desc = RelationGetDescr(relation);
    HeapTuple oldtup = change->data.tp.oldtuple ? &change->data.tp.oldtuple->tuple : nullptr;
    HeapTuple newtup = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : nullptr;

    OldRowKind old_kind = OldRowKind::None;
    int nold = 0;
    WireValue *old_values = nullptr;
    if (kind != MessageKind::Insert && oldtup) {
        old_kind = e->replident == REPLICA_IDENTITY_FULL ? OldRowKind::Full : OldRowKind::Key;
        heap_deform_tuple(oldtup, desc, e->values, e->nulls);
        nold = gather_values(st, e, oldtup, old_kind == OldRowKind::Key, false);
        old_values = static_cast<WireValue *>(palloc(sizeof(WireValue) * Max(nold, 1)));
        memcpy(old_values, st->wire, sizeof(WireValue) * nold);
    } else if (kind == MessageKind::Delete) {
        old_kind = OldRowKind::Key;  // no identity at all (REPLICA IDENTITY NOTHING): empty key
    }
    int nnew = 0;
    if (kind != MessageKind::Delete && newtup) {
        heap_deform_tuple(newtup, desc, e->values, e->nulls);
        nnew = gather_values(st, e, newtup, false, kind == MessageKind::Update);
    }
    uint32_t relid = e->relid;
    pg::run_cpp([&] {
        encoder.clear();
        encoder.row_header(kind, relid);
        if (kind != MessageKind::Insert) {
            encoder.old_row_header(old_kind, static_cast<uint16_t>(nold));
            if (old_kind != OldRowKind::None) encode_wire(old_values, nold);
        }
        if (kind != MessageKind::Delete) {
            encoder.new_row_header(static_cast<uint16_t>(nnew));
            encode_wire(st->wire, nnew);
        }
    });
    MemoryContextSwitchTo(old);
    write_encoded(ctx, true);
    MemoryContextReset(st->change_cxt);
}

static void sg_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, int nrelations, Relation relations[],
                        ReorderBufferChange *change) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    Oid *relids = static_cast<Oid *>(palloc(sizeof(Oid) * Max(nrelations, 1)));
    int n = 0;
    for (int i = 0; i < nrelations; i++) {
        RelEntry *e = get_rel_entry(st, relations[i]);
        if (!e->emit) continue;
        ensure_begin(ctx, txn);
        ensure_relation(ctx, txn, e);
        relids[n++] = e->relid;
    }
    if (n == 0) return;
    bool cascade = change->data.truncate.cascade;
    bool restart = change->data.truncate.restart_seqs;
    pg::run_cpp([&] {
        TruncateMessage t;
        t.relids.assign(relids, relids + n);
        t.cascade = cascade;
        t.restart_identity = restart;
        encoder.clear();
        encoder.truncate(t);
    });
    pfree(relids);
    write_encoded(ctx, true);
}

static bool sg_filter_by_origin(LogicalDecodingContext *ctx, RepOriginId origin_id) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    if (origin_id == InvalidRepOriginId) return false;
    return st->opts.skip_any_origin || origin_id == st->opts.skip_origin;
}

PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

void _PG_output_plugin_init(OutputPluginCallbacks *cb) {
    cb->startup_cb = sg_startup;
    cb->begin_cb = sg_begin;
    cb->change_cb = sg_change;
    cb->truncate_cb = sg_truncate;
    cb->commit_cb = sg_commit;
    cb->filter_by_origin_cb = sg_filter_by_origin;
    cb->shutdown_cb = sg_shutdown;
}

}  // extern "C"
