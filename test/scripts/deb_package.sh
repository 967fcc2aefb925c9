#!/usr/bin/env bash
# The Debian package and META.json, checked as a user gets them: the package is built with
# dpkg-buildpackage from a clean copy of the tree, installed, and pg_regress runs against it.
#
#   bash test/scripts/deb_package.sh
#
# Prints one "ok N - ..." / "not ok N - ..." line per check, then "N passed, N failed"; exits
# non-zero if a check failed. Run by scripts/test.sh (suite "deb"). The checks:
#   - META.json (PGXN) is well formed, and its version, debian/changelog's and the control file's
#     default_version agree (no build needed);
#   - dpkg-buildpackage -us -uc -b succeeds in a copy of the tree's files (tracked and untracked
#     but not ignored: what a clean checkout has), so build products stay out of the checkout;
#   - postgresql-15-stategrid-ivm_VERSION_ARCH.deb holds the shared library, the control file,
#     every stategrid_ivm--*.sql of the tree and its docs, nothing else, and depends on
#     postgresql-15;
#   - it installs (install_package below), the installed files are the package's, and the
#     REGRESS_SUBSET of pg_regress passes against them on a fresh cluster (one check per file).
#
# Environment:
#   SGIVM_DEB_ROOT   unset (CI, as root): `apt-get install -y ./postgresql-15-stategrid-ivm_*.deb`
#                    into the system, and `dpkg -L` must list the files. Set to a private copy of
#                    PostgreSQL 15 (a directory holding usr/lib/postgresql/15, as made for a
#                    developer): the package is unpacked into it with `dpkg -x` instead, so that
#                    a development run never writes into /usr/lib/postgresql. Its bin/ must be
#                    PG_BINDIR (the default when PG_BINDIR is unset).
#   SGIVM_TEST_PORT  port of the temporary cluster (default 54331)
#   SGIVM_JOBS       parallel build jobs (default: the number of CPUs)
#   SGIVM_DEB_KEEP   a directory: the .deb files and the build log are copied there
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEB_ROOT=${SGIVM_DEB_ROOT:-}
if [ -n "$DEB_ROOT" ]; then
    DEB_ROOT=$(cd "$DEB_ROOT" 2>/dev/null && pwd) || { echo "SGIVM_DEB_ROOT=$SGIVM_DEB_ROOT is not a directory" >&2; exit 1; }
    [ -n "${PG_BINDIR:-}" ] || export PG_BINDIR=$DEB_ROOT/usr/lib/postgresql/15/bin
fi
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
PACKAGE=postgresql-15-stategrid-ivm
PORT=${SGIVM_TEST_PORT:-54331}
JOBS=${SGIVM_JOBS:-$(nproc 2>/dev/null || echo 2)}
# What the installed package must get right, in about 10 s: CREATE EXTENSION from the control
# file and the 0.3.0 script with the library preloaded (setup), the output plugin loaded by name
# (decoding_text), the background worker backfilling and streaming (pipeline_backfill) and
# maintaining every kind of view, checked by verify() (view_semantics), and the 0.1.0 and 0.2.0
# scripts of the update paths (extension_update). Not pipeline_basic: its 1,000,000-row
# transaction takes 30-50 s here. The whole of REGRESS runs in suite pg_regress (make install).
REGRESS_SUBSET=(setup decoding_text pipeline_backfill view_semantics extension_update)

if sg_is_root; then BASE=/tmp; else BASE=${TMPDIR:-/tmp}; fi
WORK=$(mktemp -d "$BASE/sgivm-deb.XXXXXX")
chmod 755 "$WORK"
PGDIR=$WORK/pg
cleanup() {
    if [ -f "$PGDIR/data/postmaster.pid" ]; then sg_pg_stop "$PGDIR/data" immediate || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

PASS=0
FAIL=0
N=0
WHY=""   # set by a failing check function: what went wrong
# check DESCRIPTION COMMAND...
check() {
    local d=$1
    shift
    N=$((N + 1))
    WHY=""
    if "$@"; then
        PASS=$((PASS + 1))
        echo "ok $N - $d"
        return 0
    fi
    FAIL=$((FAIL + 1))
    echo "not ok $N - $d"
    [ -z "$WHY" ] || printf '%s\n' "$WHY" | sed 's/^/#   /'
    return 1
}
# The last line; the exit status is 0 only if nothing failed. Callers exit with it.
summary() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

# ---- META.json, debian/changelog and the control file agree --------------------------------------
CONTROL_VERSION=$(sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" "$ROOT/stategrid_ivm.control")
# The changelog's newest version without epoch and Debian revision (a native package has none).
CHANGELOG_VERSION=$(sed -nE '1s/^[^ ]+ \(([0-9]+:)?([^)-]+)(-[^)]*)?\).*/\2/p' "$ROOT/debian/changelog")

# The fields of META.json that the checks read, one "key<TAB>value" line each (perl's JSON::PP:
# no dependency beyond perl).
meta_fields() {
    perl -MJSON::PP -e '
        local $/; open my $f, "<", $ARGV[0] or die "$ARGV[0]: $!\n";
        my $m = JSON::PP->new->decode(<$f>);
        my $p = $m->{provides}{stategrid_ivm} // {};
        my %f = (
            name => $m->{name}, version => $m->{version}, abstract => $m->{abstract},
            maintainer => ref $m->{maintainer} ? join(", ", @{$m->{maintainer}}) : $m->{maintainer},
            license => ref $m->{license} ? "given" : $m->{license},
            "meta-spec" => ($m->{"meta-spec"} // {})->{version},
            "provides.file" => $p->{file}, "provides.version" => $p->{version},
            "prereqs.PostgreSQL" => ((($m->{prereqs} // {})->{runtime} // {})->{requires} // {})->{PostgreSQL},
        );
        print "$_\t", ($f{$_} // ""), "\n" for sort keys %f;' "$ROOT/META.json" 2>&1
}
meta() { awk -F '\t' -v k="$1" '$1 == k { print $2 }' <<<"$META"; }

meta_is_well_formed() {
    META=$(meta_fields) || { WHY="META.json does not parse: $META"; return 1; }
    local k missing=()
    for k in name version abstract maintainer license meta-spec provides.file provides.version prereqs.PostgreSQL; do
        [ -n "$(meta "$k")" ] || missing+=("$k")
    done
    [ ${#missing[@]} -eq 0 ] || { WHY="META.json lacks: ${missing[*]}"; return 1; }
    [[ "$(meta meta-spec)" =~ ^1\.0\.[0-9]+$ ]] || { WHY="meta-spec version $(meta meta-spec) is not 1.0.x"; return 1; }
    [[ "$(meta prereqs.PostgreSQL)" == *15.0.0* ]] || { WHY="prereqs: PostgreSQL $(meta prereqs.PostgreSQL) does not name 15"; return 1; }
}
versions_agree() {
    WHY="stategrid_ivm.control default_version '$CONTROL_VERSION'; META.json version $(meta version), provides.stategrid_ivm.version $(meta provides.version), debian/changelog $CHANGELOG_VERSION"
    [ -n "$CONTROL_VERSION" ] && [ "$(meta version)" = "$CONTROL_VERSION" ] &&
        [ "$(meta provides.version)" = "$CONTROL_VERSION" ] && [ "$CHANGELOG_VERSION" = "$CONTROL_VERSION" ]
}
provides_the_install_script() {
    WHY="provides.stategrid_ivm.file is '$(meta provides.file)', want stategrid_ivm--$CONTROL_VERSION.sql (present in the tree)"
    [ "$(meta provides.file)" = "stategrid_ivm--$CONTROL_VERSION.sql" ] && [ -f "$ROOT/$(meta provides.file)" ]
}
META=""
if check "META.json parses and has the fields of PGXN's meta spec 1.0" meta_is_well_formed; then
    check "META.json, debian/changelog and stategrid_ivm.control give one version" versions_agree
    check "META.json provides the control file's install script" provides_the_install_script
fi

# ---- build ----------------------------------------------------------------------------------------
# The files a clean checkout has: tracked, plus untracked ones that are not ignored (so a change
# not yet committed is built too); never build/, *.o or *.so of the checkout.
copy_tree() {
    mkdir -p "$WORK/src"
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
            tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
    else
        tar -C "$ROOT" --exclude=./build --exclude=./.cluster --exclude='*.o' --exclude='*.so' -cf - . |
            tar -xf - -C "$WORK/src"
    fi
}
build_package() {
    command -v dpkg-buildpackage >/dev/null || { WHY="dpkg-buildpackage not installed (dpkg-dev; scripts/install-deps.sh installs it)"; return 1; }
    copy_tree || { WHY="could not copy the tree"; return 1; }
    local t0=$SECONDS
    if ! (cd "$WORK/src" && dpkg-buildpackage -us -uc -b -j"$JOBS" </dev/null >"$WORK/build.log" 2>&1); then
        WHY="$(tail -n 40 "$WORK/build.log")"
        return 1
    fi
    echo "# dpkg-buildpackage took $((SECONDS - t0)) s"
}
ARCH=$(dpkg --print-architecture 2>/dev/null || echo unknown)
DEB=$WORK/${PACKAGE}_${CONTROL_VERSION}_$ARCH.deb
deb_is_named_for_the_version() {
    WHY="$(cd "$WORK" && ls -1 ./*.deb 2>/dev/null)"
    [ -f "$DEB" ]
}
built=0
if check "dpkg-buildpackage -us -uc -b builds the package in a clean copy of the tree" build_package &&
    check "it makes $(basename "$DEB")" deb_is_named_for_the_version; then
    built=1
fi
if [ -n "${SGIVM_DEB_KEEP:-}" ]; then
    mkdir -p "$SGIVM_DEB_KEEP" && cp "$WORK"/*.deb "$WORK/build.log" "$SGIVM_DEB_KEEP/" 2>/dev/null
fi
[ $built -eq 1 ] || { summary; exit; }

# ---- contents -------------------------------------------------------------------------------------
LIB=usr/lib/postgresql/15/lib
EXT=usr/share/postgresql/15/extension
DOC=usr/share/doc/$PACKAGE
# Every file the package must hold, and nothing else.
expected_files() {
    echo "$LIB/stategrid_ivm.so"
    echo "$EXT/stategrid_ivm.control"
    (cd "$ROOT" && ls stategrid_ivm--*.sql) | sed "s|^|$EXT/|"
    printf '%s\n' "$DOC/README.md.gz" "$DOC/changelog.gz" "$DOC/copyright"
}
deb_files() { dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./||'; }
holds_exactly_the_extension() {
    local extra missing
    extra=$(comm -13 <(expected_files | sort) <(deb_files | sort))
    missing=$(comm -23 <(expected_files | sort) <(deb_files | sort))
    WHY="${missing:+missing: $missing}${missing:+${extra:+; }}${extra:+not wanted: $extra}"
    [ -z "$extra" ] && [ -z "$missing" ]
}
depends_on_the_server() {
    local dep
    dep=$(dpkg-deb -f "$DEB" Depends)
    WHY="Depends: $dep"
    [[ ",$dep" =~ ,\ *postgresql-15( |,|$) ]]
}
check "the .deb holds the library, the control file, every stategrid_ivm--*.sql and docs, nothing else" holds_exactly_the_extension
check "it depends on postgresql-15" depends_on_the_server

# ---- install --------------------------------------------------------------------------------------
# install_package: into the system with apt-get (CI, as root), or unpacked into the private copy
# of PostgreSQL $DEB_ROOT (development on a machine whose /usr/lib/postgresql others use).
install_package() {
    if [ -n "$DEB_ROOT" ]; then
        if [ "$DEB_ROOT" = / ] || [ ! -x "$DEB_ROOT/usr/lib/postgresql/15/bin/pg_config" ]; then
            WHY="SGIVM_DEB_ROOT=$DEB_ROOT is not a private copy of PostgreSQL 15"
            return 1
        fi
        [ "$PG_BINDIR" -ef "$DEB_ROOT/usr/lib/postgresql/15/bin" ] ||
            { WHY="PG_BINDIR=$PG_BINDIR is not the bin/ of SGIVM_DEB_ROOT=$DEB_ROOT"; return 1; }
        # what an earlier install left there, so that only the package's files remain
        rm -f "$DEB_ROOT/$LIB/stategrid_ivm.so" "$DEB_ROOT/$EXT"/stategrid_ivm.control "$DEB_ROOT/$EXT"/stategrid_ivm--*.sql
        dpkg -x "$DEB" "$DEB_ROOT" || { WHY="dpkg -x failed"; return 1; }
        return 0
    fi
    sg_is_root || { WHY="apt-get install needs root (or set SGIVM_DEB_ROOT to a private copy of PostgreSQL 15)"; return 1; }
    # --reinstall: the same version may be installed from an earlier run, its files since
    # overwritten by make install; the lock timeout waits for another apt on the machine.
    (cd "$WORK" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall --no-install-recommends \
        -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 "./$(basename "$DEB")" </dev/null >"$WORK/install.log" 2>&1) ||
        { WHY="$(tail -n 20 "$WORK/install.log")"; return 1; }
}
# dpkg -L of the installed package lists the library and every SQL script (CI only: a package
# unpacked with dpkg -x is not in dpkg's database).
dpkg_lists_the_files() {
    local listed f missing=()
    listed=$(dpkg -L "$PACKAGE" 2>&1) || { WHY="$listed"; return 1; }
    for f in $(expected_files); do
        case $f in "$DOC"/*) continue ;; esac
        grep -qx "/$f" <<<"$listed" || missing+=("/$f")
    done
    WHY="dpkg -L $PACKAGE lacks: ${missing[*]}"
    [ ${#missing[@]} -eq 0 ]
}
# Every file of the package is in place, byte for byte (not an earlier make install's), and where
# the server of PG_BINDIR looks for it.
installed_files_are_the_packages() {
    local f differ=()
    mkdir -p "$WORK/x"
    dpkg-deb -x "$DEB" "$WORK/x" || { WHY="dpkg-deb -x failed"; return 1; }
    for f in $(deb_files); do
        cmp -s "$WORK/x/$f" "$DEB_ROOT/$f" || differ+=("$DEB_ROOT/$f")
    done
    WHY="not the package's: ${differ[*]}"
    [ ${#differ[@]} -eq 0 ] || return 1
    WHY="$PG_CONFIG --pkglibdir is $("$PG_CONFIG" --pkglibdir), the package installed into $DEB_ROOT/$LIB"
    [ "$("$PG_CONFIG" --pkglibdir)" -ef "$DEB_ROOT/$LIB" ]
}
if [ -n "$DEB_ROOT" ]; then how="dpkg -x into $DEB_ROOT"; else how="apt-get install -y ./$(basename "$DEB")"; fi
check "the package installs ($how)" install_package || { summary; exit; }
[ -n "$DEB_ROOT" ] || check "dpkg -L $PACKAGE lists the library and the SQL scripts" dpkg_lists_the_files
check "the installed files are the package's, where $PG_CONFIG looks" installed_files_are_the_packages || { summary; exit; }

# ---- pg_regress against the installed package ----------------------------------------------------
start_cluster() {
    sg_mkdir_owned "$PGDIR"
    chmod 755 "$PGDIR"
    if ! sg_initdb "$PGDIR/data" "fsync = off
full_page_writes = off" 2>"$WORK/initdb.err" ||
        ! sg_pg_start "$PGDIR/data" "$PORT" "$PGDIR" "$PGDIR/server.log" "" 2>>"$WORK/initdb.err"; then
        WHY="$(tail -n 20 "$WORK/initdb.err")"
        return 1
    fi
}
check "a fresh cluster starts with the package's library preloaded (port $PORT)" start_cluster || { summary; exit; }

# pg_regress as make installcheck runs it, from the clean copy (sql/, expected/, examples/).
PGXS_DIR=$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")
mkdir -p "$WORK/regress"
PGHOST=$PGDIR PGPORT=$PORT PGUSER=postgres "$PGXS_DIR/test/regress/pg_regress" \
    --inputdir="$WORK/src" --outputdir="$WORK/regress" --bindir="$PG_BINDIR" \
    --dbname=contrib_regression "${REGRESS_SUBSET[@]}" </dev/null >"$WORK/regress.out" 2>&1
sed 's/^/# /' "$WORK/regress.out"
# PostgreSQL 15's pg_regress prints "test NAME ... ok" (or "... FAILED") per file.
regress_file_passed() { grep -qE "^test $1 +\.\.\. ok( |\$)" "$WORK/regress.out"; }
for t in "${REGRESS_SUBSET[@]}"; do
    check "pg_regress $t against the installed package" regress_file_passed "$t"
done
if [ -f "$WORK/regress/regression.diffs" ]; then head -n 200 "$WORK/regress/regression.diffs" | sed 's/^/# /'; fi

summary
