# PGXS build of the stategrid_ivm extension and output plugin (one shared library).
# make, make install, make installcheck (needs a running server set up as in README.md).

MODULE_big = stategrid_ivm
EXTENSION = stategrid_ivm
DATA = stategrid_ivm--0.3.0.sql stategrid_ivm--0.1.0.sql stategrid_ivm--0.1.0--0.2.0.sql \
       stategrid_ivm--0.2.0--0.3.0.sql

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -Wno-register -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-cast-function-type -fno-omit-frame-pointer
SHLIB_LINK = -lstdc++

# pg_regress suites (sql/*.sql against expected/*.out)
REGRESS = setup decoding_text decoding_binary decoding_options pipeline_basic pipeline_errors pipeline_backfill view_semantics view_reordering view_refusals view_drop view_source_ddl pipeline_rollback pipeline_large_record hostile_names hostile_values direct_writes pipeline_wal pipeline_idle view_changed_rows privileges source_rls pipeline_rebuild source_partitions view_identical_values view_differential view_ops_aggregate view_ranking view_ops_join view_ops_compose status_columns replica_identity drop_extension extension_update
REGRESS_OPTS = --inputdir=$(srcdir) --outputdir=$(CURDIR)/build/regress

# JIT bitcode would be compiled by clang++ without our C++ flags; we have no use for it.
override with_llvm = no

PG_CONFIG ?= $(shell command -v pg_config >/dev/null 2>&1 && [ "`pg_config --version | sed 's/[^0-9]*\([0-9]*\).*/\1/'`" = 15 ] && echo pg_config || echo /usr/lib/postgresql/15/bin/pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The pure C++ core must build without PostgreSQL's include paths.
src/core/%.o: src/core/%.cpp
	$(CXX) $(PG_CXXFLAGS) -O2 -g -fPIC -I$(srcdir)/src -c -o $@ $<

$(OBJS): $(wildcard src/core/*.hpp) $(wildcard src/pg/*.hpp)
