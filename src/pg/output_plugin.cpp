// The logical decoding output plugin `stategrid_ivm`: turns the WAL of the chosen tables into
// the change stream of docs/change-format.md (binary), or its readable text form.
//
// Each callback first gathers what it needs from PostgreSQL into plain palloc'd data (where a
// PostgreSQL error may longjmp freely), then encodes with the C++ core inside run_cpp (where
// a C++ exception becomes an ereport), then hands the bytes to the output buffer.
extern "C" {
#include "postgres.h"

#include "access/attmap.h"
#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "lib/ilist.h"
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
#include "utils/syscache.h"
#include "utils/varlena.h"
}

#include <string>
#include <unordered_map>

#include "core/change_format.hpp"
#include "pg/seam.hpp"

using namespace sgivm;

namespace {

// What the plugin remembers about one relation for the whole decoding session.
//
// A partition of a selected partitioned table is emitted as that table (its topmost selected
// ancestor, as pgoutput's publish_via_partition_root): rows under the table's OID, in the
// table's column order, so that a consumer keeps one copy of the whole tree.
struct RelEntry {
    Oid relid;         // hash key
    bool valid;        // false after a relcache invalidation: rebuild before use
    bool emit;         // part of the requested table set, itself or through an ancestor
    Oid publish_relid; // the relation its changes are emitted as (itself, or the selected ancestor)
    bool key_usable;   // its old tuples carry the publishing relation's key (else an empty key goes)
    TransactionId relation_sent_xid;  // relation message already sent in this transaction
    // Kept across rebuilds: what the partition checks at commit need to know of the transaction.
    TransactionId skipped_xid;  // a change of it was not emitted in this transaction
    TransactionId emitted_xid;  // a change of it was emitted in this transaction, as emitted_as
    Oid emitted_as;
    char *nspname;
    char *relname;
    int ncols;              // emitted columns (not dropped, not generated)
    AttrNumber *attnums;    // their attribute numbers in this relation's tuples
    AttrNumber *pub_attnums;  // and in the publishing relation (the names and types sent)
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

// A selected partitioned table and its partitions (all levels) as of the last commit looked at:
// the stream has no rows for a partition that joins or leaves with its rows, so each
// transaction that changed the catalog is checked against this list.
struct PartitionTree {
    Oid relid;
    Oid *members;  // sorted, the table itself included
    int nmembers;
};

struct PluginState {
    PluginOptions opts;
    bool trees_known;      // the selected partitioned tables were looked up (first transaction)
    List *trees;           // PartitionTree *, in the decoding context's memory
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
bool have_partition_entries = false;  // some entry publishes as another relation
bool catalog_changed = true;          // a relcache invalidation since the partition trees were checked
Encoder encoder;
std::string text_out;
std::unordered_map<uint32_t, RelationMessage> text_relations;  // for the text form's names

void invalidate_rel(Datum, Oid relid) {
    catalog_changed = true;
    if (!rel_cache) return;
    if (relid == InvalidOid || have_partition_entries) {  // (partitions follow their root)
        HASH_SEQ_STATUS st;
        hash_seq_init(&st, rel_cache);
        while (RelEntry *e = static_cast<RelEntry *>(hash_seq_search(&st)))
            if (relid == InvalidOid || e->relid == relid || e->publish_relid == relid) e->valid = false;
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
    have_partition_entries = false;
    catalog_changed = true;
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

bool wanted(const PluginOptions &o, Oid relid, const char *nspname, const char *relname) {
    if (!o.filter_tables) return true;
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

// The topmost selected ancestor of a partition, or InvalidOid. PostgreSQL calls only.
Oid selected_ancestor(const PluginOptions &o, Oid relid) {
    Oid found = InvalidOid;
    List *ancestors = get_partition_ancestors(relid);  // parent first, root last
    ListCell *lc;
    foreach (lc, ancestors) {
        Oid a = lfirst_oid(lc);
        char *nsp = get_namespace_name(get_rel_namespace(a));
        char *name = get_rel_name(a);
        if (nsp && name && wanted(o, a, nsp, name)) found = a;
    }
    list_free(ancestors);
    return found;
}

// The key index of a relation: its replica identity index, else its primary key.
Bitmapset *key_columns(Relation rel) {
    Bitmapset *key = nullptr;
    Oid keyidx = RelationGetReplicaIndex(rel);
    if (!OidIsValid(keyidx)) keyidx = RelationGetPrimaryKeyIndex(rel);
    if (OidIsValid(keyidx)) {
        Relation idx = RelationIdGetRelation(keyidx);
        for (int i = 0; i < idx->rd_index->indnkeyatts; i++)
            key = bms_add_member(key, idx->rd_index->indkey.values[i]);
        RelationClose(idx);
    }
    return key;
}

// Builds (or rebuilds) the cache entry of a relation. PostgreSQL calls only.
RelEntry *get_rel_entry(PluginState *st, Relation rel) {
    Oid relid = RelationGetRelid(rel);
    bool found;
    RelEntry *e = static_cast<RelEntry *>(hash_search(rel_cache, &relid, HASH_ENTER, &found));
    if (found && e->valid) return e;
    RelEntry kept = {};
    if (found) kept = *e;
    memset(reinterpret_cast<char *>(e) + sizeof(Oid), 0, sizeof(RelEntry) - sizeof(Oid));
    e->generation = found ? kept.generation + 1 : 0;
    e->skipped_xid = kept.skipped_xid;
    e->emitted_xid = kept.emitted_xid;
    e->emitted_as = kept.emitted_as;
    MemoryContext old = MemoryContextSwitchTo(rel_cache_cxt);
    e->nspname = get_namespace_name(RelationGetNamespace(rel));
    e->relname = pstrdup(RelationGetRelationName(rel));
    e->publish_relid = relid;
    e->emit = wanted(st->opts, relid, e->nspname, e->relname);
    if (rel->rd_rel->relispartition) {
        Oid ancestor = selected_ancestor(st->opts, relid);
        if (OidIsValid(ancestor)) {
            e->emit = true;
            e->publish_relid = ancestor;
            have_partition_entries = true;
        }
    }
    e->relation_sent_xid = InvalidTransactionId;
    e->replident = rel->rd_rel->relreplident;
    TupleDesc desc = RelationGetDescr(rel);
    e->natts = desc->natts;
    e->values = static_cast<Datum *>(palloc(sizeof(Datum) * Max(desc->natts, 1)));
    e->nulls = static_cast<bool *>(palloc(sizeof(bool) * Max(desc->natts, 1)));
    if (e->emit) {
        // Columns, key and types are the publishing relation's; values are read from this
        // relation's tuples through the map by name (a partition may order its columns otherwise,
        // or have dropped some).
        Relation pub = e->publish_relid == relid ? rel : RelationIdGetRelation(e->publish_relid);
        if (!RelationIsValid(pub)) elog(ERROR, "stategrid_ivm: could not open relation %u", e->publish_relid);
        TupleDesc pdesc = RelationGetDescr(pub);
        AttrMap *map = pub == rel ? nullptr : build_attrmap_by_name(desc, pdesc);
        Bitmapset *key = key_columns(pub);
        // A partition's old tuples hold its own identity: its primary key (the table's), or every
        // column; under another index or NOTHING they cannot say which row of the table went.
        e->key_usable = pub == rel || e->replident == REPLICA_IDENTITY_FULL ||
                        (e->replident == REPLICA_IDENTITY_DEFAULT && OidIsValid(RelationGetPrimaryKeyIndex(rel)));
        int n = Max(pdesc->natts, 1);
        e->attnums = static_cast<AttrNumber *>(palloc(sizeof(AttrNumber) * n));
        e->pub_attnums = static_cast<AttrNumber *>(palloc(sizeof(AttrNumber) * n));
        e->kinds = static_cast<ValueKind *>(palloc(sizeof(ValueKind) * n));
        e->is_key = static_cast<bool *>(palloc0(sizeof(bool) * n));
        e->out_funcs = static_cast<FmgrInfo *>(palloc0(sizeof(FmgrInfo) * n));
        e->raw_text = static_cast<bool *>(palloc0(sizeof(bool) * n));
        e->varlena = static_cast<bool *>(palloc0(sizeof(bool) * n));
        for (int i = 0; i < pdesc->natts; i++) {
            Form_pg_attribute att = TupleDescAttr(pdesc, i);
            if (att->attisdropped || att->attgenerated) continue;
            int c = e->ncols++;
            e->pub_attnums[c] = att->attnum;
            e->attnums[c] = map ? map->attnums[i] : att->attnum;
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
        if (pub != rel) RelationClose(pub);
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

// The entry of the relation a change is emitted as (built if need be).
RelEntry *publishing_entry(PluginState *st, RelEntry *e) {
    if (e->publish_relid == e->relid) return e;
    Oid relid = e->publish_relid;
    RelEntry *p = static_cast<RelEntry *>(hash_search(rel_cache, &relid, HASH_FIND, nullptr));
    if (p && p->valid) return p;
    Relation rel = RelationIdGetRelation(relid);
    if (!RelationIsValid(rel)) elog(ERROR, "stategrid_ivm: could not open relation %u", relid);
    p = get_rel_entry(st, rel);
    RelationClose(rel);
    return p;
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
        Form_pg_attribute att = TupleDescAttr(desc, e->pub_attnums[c] - 1);
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

void write_resync(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Oid relid, ResyncReason reason, Oid partition) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    ensure_begin(ctx, txn);
    Relation rel = RelationIdGetRelation(relid);
    if (!RelationIsValid(rel)) elog(ERROR, "stategrid_ivm: could not open relation %u", relid);
    RelEntry *e = get_rel_entry(st, rel);
    RelationClose(rel);
    ensure_relation(ctx, txn, e);
    char *nsp = get_namespace_name(get_rel_namespace(partition));
    char *name = get_rel_name(partition);
    const char *shown = nsp && name ? quote_qualified_identifier(nsp, name) : psprintf("with OID %u", partition);
    pg::run_cpp([&] {
        encoder.clear();
        encoder.resync(ResyncMessage{relid, reason, shown});
    });
    write_encoded(ctx, true);
}

// The partitions of a table, all levels, the table included: sorted.
void read_members(PartitionTree *t) {
    List *all = find_all_inheritors(t->relid, NoLock, nullptr);
    t->nmembers = list_length(all);
    t->members = static_cast<Oid *>(palloc(sizeof(Oid) * Max(t->nmembers, 1)));
    int i = 0;
    ListCell *lc;
    foreach (lc, all) t->members[i++] = lfirst_oid(lc);
    list_free(all);
    qsort(t->members, t->nmembers, sizeof(Oid), oid_cmp);
}

bool is_member(const PartitionTree *t, Oid relid) {
    return bsearch(&relid, t->members, t->nmembers, sizeof(Oid), oid_cmp) != nullptr;
}

// The selected partitioned tables, looked up at the first transaction (its catalog snapshot is
// where the stream starts). Selection by OID, or by name (a bare name: on the search_path).
void find_trees(PluginState *st) {
    st->trees_known = true;
    List *candidates = NIL;
    for (int i = 0; i < st->opts.nrelids; i++) candidates = lappend_oid(candidates, st->opts.relids[i]);
    ListCell *lc;
    foreach (lc, st->opts.table_names) {
        const char *n = static_cast<const char *>(lfirst(lc));
        const char *dot = strchr(n, '.');
        Oid nsp = dot ? get_namespace_oid(pnstrdup(n, dot - n), true) : InvalidOid;
        Oid relid = dot ? (OidIsValid(nsp) ? get_relname_relid(dot + 1, nsp) : InvalidOid) : RelnameGetRelid(n);
        if (OidIsValid(relid)) candidates = lappend_oid(candidates, relid);
    }
    if (!st->opts.filter_tables) {
        // every table is selected: every partitioned table that is not a partition is a tree
        Relation classes = table_open(RelationRelationId, AccessShareLock);
        SysScanDesc scan = systable_beginscan(classes, InvalidOid, false, nullptr, 0, nullptr);
        while (HeapTuple tup = systable_getnext(scan)) {
            Form_pg_class c = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
            if (c->relkind == RELKIND_PARTITIONED_TABLE && !c->relispartition) candidates = lappend_oid(candidates, c->oid);
        }
        systable_endscan(scan);
        table_close(classes, AccessShareLock);
    }
    foreach (lc, candidates) {
        Oid relid = lfirst_oid(lc);
        if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE) continue;
        PartitionTree *t = static_cast<PartitionTree *>(palloc0(sizeof(PartitionTree)));
        t->relid = relid;
        read_members(t);
        st->trees = lappend(st->trees, t);
    }
    list_free(candidates);
}

bool xid_of_transaction(ReorderBufferTXN *txn, TransactionId xid) {
    if (!TransactionIdIsValid(xid)) return false;
    if (TransactionIdEquals(txn->xid, xid)) return true;
    // (dlist_foreach and dlist_container do not compile as C++)
    const dlist_node *head = &txn->subtxns.head;
    for (const dlist_node *n = head->next; n && n != head; n = n->next) {
        const ReorderBufferTXN *sub = reinterpret_cast<const ReorderBufferTXN *>(
            reinterpret_cast<const char *>(n) - offsetof(ReorderBufferTXN, node));
        if (TransactionIdEquals(sub->xid, xid)) return true;
    }
    return false;
}

// A relation created by this transaction: the row of its ctid column in pg_attribute, written
// once by CREATE TABLE and never updated (ATTACH PARTITION, renames and the like update the
// table's other catalog rows), carries the creating transaction's xid.
bool created_in(ReorderBufferTXN *txn, Oid relid) {
    HeapTuple tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(SelfItemPointerAttributeNumber));
    if (!HeapTupleIsValid(tup)) return false;
    bool created = xid_of_transaction(txn, HeapTupleHeaderGetXmin(tup->t_data));
    ReleaseSysCache(tup);
    return created;
}

// At the commit of a transaction that changed the catalog: did a selected partitioned table
// gain or lose rows without row changes? A partition that joined with rows (ATTACH PARTITION of
// a table that existed before the transaction, or got rows in it before it joined), one that
// left (DETACH PARTITION, DROP TABLE) or one that left after its rows were emitted in this
// transaction: say so with a Resync message. A partition created in the transaction as a
// partition (CREATE TABLE ... PARTITION OF) had all its rows emitted.
void check_trees(LogicalDecodingContext *ctx, ReorderBufferTXN *txn) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    catalog_changed = false;
    ListCell *lc;
    foreach (lc, st->trees) {
        PartitionTree *t = static_cast<PartitionTree *>(lfirst(lc));
        PartitionTree now = *t;
        read_members(&now);
        Oid partition = InvalidOid;
        ResyncReason reason = ResyncReason::PartitionDetached;
        for (int i = 0; i < t->nmembers && !OidIsValid(partition); i++)
            if (!is_member(&now, t->members[i])) partition = t->members[i];
        for (int i = 0; i < now.nmembers && !OidIsValid(partition); i++) {
            Oid m = now.members[i];
            if (is_member(t, m)) continue;
            RelEntry *e = static_cast<RelEntry *>(hash_search(rel_cache, &m, HASH_FIND, nullptr));
            if (!created_in(txn, m) || (e && e->skipped_xid == txn->xid)) {
                partition = m;
                reason = ResyncReason::PartitionAttached;
            }
        }
        if (!OidIsValid(partition) && have_partition_entries) {
            HASH_SEQ_STATUS seq;
            hash_seq_init(&seq, rel_cache);
            while (RelEntry *e = static_cast<RelEntry *>(hash_seq_search(&seq)))
                if (e->emitted_xid == txn->xid && e->emitted_as == t->relid && !is_member(&now, e->relid))
                    partition = e->relid;  // (no break: the scan must run to its end)
        }
        pfree(t->members);
        *t = now;
        if (OidIsValid(partition)) write_resync(ctx, txn, t->relid, reason, partition);
    }
}

// ---- callbacks ---------------------------------------------------------------------------

// The value of an option. pg_recvlogical -o NAME (no "=") passes an option without one: say
// that it needs one, and which, rather than calling it an invalid "(null)".
const char *option_value(const DefElem *el, const char *hint) {
    if (el->arg) return strVal(el->arg);
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("option \"%s\" of output plugin stategrid_ivm needs a value", el->defname),
                    errhint("%s", hint)));
    pg_unreachable();
}

void parse_options(LogicalDecodingContext *ctx, PluginOptions *o) {
    ListCell *lc;
    foreach (lc, ctx->output_plugin_options) {
        DefElem *el = static_cast<DefElem *>(lfirst(lc));
        if (strcmp(el->defname, "format") == 0) {
            const char *val = option_value(el, "Use 'binary' or 'text'.");
            if (strcmp(val, "text") == 0)
                o->text_format = true;
            else if (strcmp(val, "binary") == 0)
                o->text_format = false;
            else
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("invalid value \"%s\" for option \"format\" of output plugin stategrid_ivm", val),
                                errhint("Use 'binary' or 'text'.")));
        } else if (strcmp(el->defname, "tables") == 0 || strcmp(el->defname, "relids") == 0) {
            bool by_name = el->defname[0] == 't';
            const char *val = option_value(el, by_name ? "Give a comma-separated list of table names."
                                                       : "Give a comma-separated list of table OIDs.");
            List *items = NIL;
            if (!SplitIdentifierString(pstrdup(val), ',', &items))
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("invalid list \"%s\" for option \"%s\" of output plugin stategrid_ivm", val,
                                       el->defname)));
            // An empty list would select no table and stream nothing, silently.
            if (items == NIL)
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("empty list for option \"%s\" of output plugin stategrid_ivm", el->defname),
                                errhint("Name at least one table, or leave the option out to emit every table.")));
            o->filter_tables = true;
            if (by_name) {
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
            const char *val = option_value(el, "Use 'any' or the name of a replication origin.");
            if (*val == '\0')
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
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    st->xact_begun = false;
    if (!st->trees_known) {
        MemoryContext old = MemoryContextSwitchTo(ctx->context);
        find_trees(st);
        MemoryContextSwitchTo(old);
    }
}

static void sg_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn) {
    PluginState *st = static_cast<PluginState *>(ctx->output_plugin_private);
    if (catalog_changed && st->trees) {
        MemoryContext old = MemoryContextSwitchTo(ctx->context);
        check_trees(ctx, txn);
        MemoryContextSwitchTo(old);
    }
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
    if (!e->emit) {
        e->skipped_xid = txn->xid;  // (rows of a table that may become a partition in this transaction)
        return;
    }

    MessageKind kind;
    switch (change->action) {
        case REORDER_BUFFER_CHANGE_INSERT: kind = MessageKind::Insert; break;
        case REORDER_BUFFER_CHANGE_UPDATE: kind = MessageKind::Update; break;
        case REORDER_BUFFER_CHANGE_DELETE: kind = MessageKind::Delete; break;
        default: return;
    }
    ensure_begin(ctx, txn);
    ensure_relation(ctx, txn, publishing_entry(st, e));
    e->emitted_xid = txn->xid;
    e->emitted_as = e->publish_relid;

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
        // (a partition under another identity than the table's key: an empty key, which the
        // consumer refuses, rather than a wrong one)
        nold = e->key_usable ? gather_values(st, e, oldtup, old_kind == OldRowKind::Key, false) : 0;
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
    uint32_t relid = e->publish_relid;
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
    auto truncated = [&](Oid relid) {
        for (int i = 0; i < nrelations; i++)
            if (RelationGetRelid(relations[i]) == relid) return true;
        return false;
    };
    for (int i = 0; i < nrelations; i++) {
        RelEntry *e = get_rel_entry(st, relations[i]);
        if (!e->emit) {
            e->skipped_xid = txn->xid;
            continue;
        }
        if (e->publish_relid != e->relid) {
            // A partition: TRUNCATE of its table lists the table too (and says it all); of the
            // partition alone, its rows leave the table, and the stream cannot say which.
            Oid table = e->publish_relid;
            if (!truncated(table)) write_resync(ctx, txn, table, ResyncReason::PartitionTruncated, e->relid);
            continue;
        }
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
