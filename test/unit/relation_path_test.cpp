// Unit tests of sgivm::parse_relation_path / find_relation_path (src/core/relation_path.hpp):
// every form of PostgreSQL 15's relation file paths (common/relpath.c, md.c's segments), and
// the messages that name them.
#include "core/relation_path.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace sgivm;
using Fork = RelationPath::Fork;

namespace {

TEST(RelationPath, DefaultTablespace) {
    auto p = parse_relation_path("base/5/16384");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->tablespace, 0u);
    EXPECT_EQ(p->database, 5u);
    EXPECT_EQ(p->relfilenode, 16384u);
    EXPECT_FALSE(p->temporary());
    EXPECT_EQ(p->fork, Fork::Main);
    EXPECT_EQ(p->segment, 0u);
}

TEST(RelationPath, OtherTablespace) {
    auto p = parse_relation_path("pg_tblspc/16548/PG_15_202209061/5/16555");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->tablespace, 16548u);
    EXPECT_EQ(p->database, 5u);
    EXPECT_EQ(p->relfilenode, 16555u);
}

TEST(RelationPath, GlobalTablespace) {
    auto p = parse_relation_path("global/1262");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->tablespace, RelationPath::kGlobalTablespace);
    EXPECT_EQ(p->database, 0u);
    EXPECT_EQ(p->relfilenode, 1262u);
    EXPECT_FALSE(parse_relation_path("global/t3_1262"));  // no temporary shared relations
}

TEST(RelationPath, TemporaryForksAndSegments) {
    auto p = parse_relation_path("pg_tblspc/16390/PG_15_202209061/5/t3_16400_fsm.2");
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->temporary());
    EXPECT_EQ(p->backend, 3);
    EXPECT_EQ(p->relfilenode, 16400u);
    EXPECT_EQ(p->fork, Fork::FreeSpaceMap);
    EXPECT_EQ(p->segment, 2u);
    EXPECT_EQ(parse_relation_path("base/5/16384_vm")->fork, Fork::VisibilityMap);
    EXPECT_EQ(parse_relation_path("base/5/16384_init")->fork, Fork::Init);
    EXPECT_EQ(parse_relation_path("base/5/16384.7")->segment, 7u);
    EXPECT_EQ(parse_relation_path("base/5/4294967295")->relfilenode, 4294967295u);
}

TEST(RelationPath, RefusesWhatIsNotARelationFile) {
    for (const char *s : {"", "base", "base/5", "base/5/", "base/5/x", "base/5/16384 ", "base/5/16384_fsmx",
                          "base/5/16384.", "base/5/16384/1", "base/pgsql_tmp/pgsql_tmp123.4", "/data/base/5/16384",
                          "pg_tblspc/16390/5/16400", "pg_tblspc/0/PG_15_1/5/1", "pg_tblspc/16390/PG_15_1/5",
                          "base/5/4294967296", "base/5/t_16384", "global/", "pg_wal/000000010000000000000001"})
        EXPECT_FALSE(parse_relation_path(s)) << s;
}

TEST(RelationPath, FoundInMessages) {
    auto p = find_relation_path(
        "could not extend file \"pg_tblspc/16548/PG_15_202209061/5/16555\": No space left on device");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->relfilenode, 16555u);
    // after other quoted words, and wrapped in what the worker was doing
    p = find_relation_path("maintaining view \"dws\": could not extend file \"base/5/16384.1\": wrote only 4096 of "
                           "8192 bytes at block 131072");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->relfilenode, 16384u);
    EXPECT_EQ(p->segment, 1u);
    EXPECT_FALSE(find_relation_path("could not write to file \"base/pgsql_tmp/pgsql_tmp7.0\": No space left on device"));
    EXPECT_FALSE(find_relation_path("no quotes base/5/16384"));
    EXPECT_FALSE(find_relation_path("unbalanced \"base/5/16384"));
}

}  // namespace
