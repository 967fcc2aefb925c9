// SQL functions over the change stream: stategrid_ivm.change_to_text(bytea) shows one binary
// message of the plugin in its text form, naming relations from the current catalog.
extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_attribute.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(sgivm_change_to_text);
}

#include <map>
#include <memory>

#include "core/change_format.hpp"
#include "pg/seam.hpp"

using namespace sgivm;

namespace {

// Table and column names of a relation as the catalog has them now (null if it is gone); key
// columns marked as the plugin marks them (replica identity index, else primary key).
std::unique_ptr<RelationMessage> catalog_relation(uint32_t relid) {
    char *nsp = nullptr, *rel = nullptr;
    List *names = NIL, *is_key = NIL;
    pg::pg_call([&] {
        rel = get_rel_name(relid);
        if (!rel) return;
        nsp = get_namespace_name(get_rel_namespace(relid));
        List *keys = NIL;
        Relation r = RelationIdGetRelation(relid);
        if (RelationIsValid(r)) {
            Oid idx = RelationGetReplicaIndex(r);
            if (!OidIsValid(idx)) idx = RelationGetPrimaryKeyIndex(r);
            if (OidIsValid(idx)) {
                Relation ir = RelationIdGetRelation(idx);
                for (int i = 0; i < ir->rd_index->indnkeyatts; i++) keys = lappend_int(keys, ir->rd_index->indkey.values[i]);
                RelationClose(ir);
            }
            RelationClose(r);
        }
        for (AttrNumber a = 1;; a++) {
            HeapTuple tp = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(a));
            if (!HeapTupleIsValid(tp)) break;
            Form_pg_attribute att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tp));
            if (!att->attisdropped && !att->attgenerated) {
                names = lappend(names, pstrdup(NameStr(att->attname)));
                is_key = lappend_int(is_key, list_member_int(keys, a) ? 1 : 0);
            }
            ReleaseSysCache(tp);
        }
    });
    if (!rel) return nullptr;
    auto r = std::make_unique<RelationMessage>();
    r->relid = relid;
    r->schema = nsp;
    r->name = rel;
    for (int i = 0; i < list_length(names); i++)
        r->columns.push_back(Column{static_cast<const char *>(list_nth(names, i)), 0, -1, list_nth_int(is_key, i) != 0});
    return r;
}

}  // namespace

extern "C" Datum sgivm_change_to_text(PG_FUNCTION_ARGS) {
    bytea *b = PG_GETARG_BYTEA_PP(0);
    std::string_view bytes(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
    char *out = pg::run_cpp([&] {
        std::map<uint32_t, std::unique_ptr<RelationMessage>> seen;
        Message m = decode(bytes);
        std::string s = format_text(m, [&](uint32_t relid) -> const RelationMessage * {
            auto it = seen.find(relid);
            if (it == seen.end()) it = seen.emplace(relid, catalog_relation(relid)).first;
            return it->second.get();
        });
        return pg::pg_call([&] { return pnstrdup(s.data(), s.size()); });
    });
    PG_RETURN_TEXT_P(cstring_to_text(out));
}
