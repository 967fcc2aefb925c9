#!/usr/bin/env bash
# Runs scripts/install-deps.sh against every starting state a new machine can be in, with
# stand-ins for dpkg-query, apt-get, apt-cache and id first on PATH: they answer as Debian's
# tools do for absent, removed and installed packages, and record the calls made.
#
#   bash test/scripts/install_deps.sh [SCRIPT]     (default: scripts/install-deps.sh)
#
# Prints one "ok N - ..." / "not ok N - ..." line per check, then "N passed, N failed"; exits
# non-zero if a check failed. Run by scripts/test.sh (suite "scripts").
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPT=${1:-$ROOT/scripts/install-deps.sh}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sgivm-deps-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

PG_NEW=15.20-0+deb12u1
PG_OLD=15.18-0+deb12u1
# The packages install-deps.sh installs, read from the script itself (the PACKAGES array).
mapfile -t ALL < <(sed -n '/^PACKAGES=(/,/^)/p' "$SCRIPT" | sed -e '1d' -e '$d' -e 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d')

# ---- the stand-ins ------------------------------------------------------------------------------
STUBS=$WORK/bin
mkdir -p "$STUBS"

# dpkg-query -W -f=FORMAT PKG: the format's fields for a package dpkg knows (installed, or removed
# with its configuration files left, as `apt-get remove` leaves it); exit 1 and a message on
# stderr for a package it has never seen.
cat >"$STUBS/dpkg-query" <<'STUB'
#!/usr/bin/env bash
echo "dpkg-query $*" >>"$FAKE/calls"
fmt='${binary:Package}\n'
pkgs=()
for a in "$@"; do
    case $a in
        -W | --show) ;;
        -f=* | --showformat=*) fmt=${a#*=} ;;
        *) pkgs+=("$a") ;;
    esac
done
rc=0
for p in "${pkgs[@]}"; do
    if [ -f "$FAKE/installed/$p" ]; then status=installed; version=$(cat "$FAKE/installed/$p")
    elif [ -f "$FAKE/config-files/$p" ]; then status=config-files; version=$(cat "$FAKE/config-files/$p")
    else echo "dpkg-query: no packages found matching $p" >&2; rc=1; continue; fi
    out=${fmt//'${db:Status-Status}'/$status}
    out=${out//'${Version}'/$version}
    out=${out//'${binary:Package}'/$p}
    printf '%b' "$out"
done
exit $rc
STUB

# apt-cache policy PKG: nothing for an unknown package, "Candidate: (none)" for a virtual one.
cat >"$STUBS/apt-cache" <<'STUB'
#!/usr/bin/env bash
echo "apt-cache $*" >>"$FAKE/calls"
[ "$1" = policy ] || exit 0
p=$2
if [ -f "$FAKE/virtual/$p" ]; then printf '%s:\n  Installed: (none)\n  Candidate: (none)\n' "$p"
elif [ -f "$FAKE/available/$p" ]; then
    printf '%s:\n  Installed: %s\n  Candidate: %s\n' "$p" "$(cat "$FAKE/installed/$p" 2>/dev/null || echo '(none)')" "$(cat "$FAKE/available/$p")"
fi
exit 0
STUB

# apt-get update | install [-options] PKG...: install sets every named package to its candidate
# version (all or nothing, as apt does); an unknown package fails the whole install.
cat >"$STUBS/apt-get" <<'STUB'
#!/usr/bin/env bash
echo "apt-get $*" >>"$FAKE/calls"
cmd=""
pkgs=()
skip=0
for a in "$@"; do
    if [ $skip -eq 1 ]; then skip=0; continue; fi
    case $a in
        -o) skip=1 ;;
        -*) ;;
        *) if [ -z "$cmd" ]; then cmd=$a; else pkgs+=("$a"); fi ;;
    esac
done
case $cmd in
    update)
        if [ -f "$FAKE/update_fails" ]; then echo "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease" >&2; exit 100; fi
        exit 0 ;;
    install)
        if [ -f "$FAKE/install_fails" ]; then echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2; exit 100; fi
        for p in "${pkgs[@]}"; do
            [ -f "$FAKE/available/$p" ] || { echo "E: Unable to locate package $p" >&2; exit 100; }
        done
        for p in "${pkgs[@]}"; do
            [ -f "$FAKE/held/$p" ] && continue
            cp "$FAKE/available/$p" "$FAKE/installed/$p"
            rm -f "$FAKE/config-files/$p"
        done
        echo "Setting up ${pkgs[*]} ..."
        exit 0 ;;
    *) echo "E: Invalid operation $cmd" >&2; exit 100 ;;
esac
STUB

# id -u: the uid the case runs as; anything else is the real id.
cat >"$STUBS/id" <<'STUB'
#!/usr/bin/env bash
if [ "$*" = "-u" ]; then cat "$FAKE/uid"; else exec /usr/bin/id "$@"; fi
STUB
chmod +x "$STUBS"/*

# ---- cases --------------------------------------------------------------------------------------
PASS=0
FAIL=0
N=0
check() { # check DESCRIPTION COMMAND...
    local d=$1
    shift
    N=$((N + 1))
    if "$@"; then
        PASS=$((PASS + 1))
        echo "ok $N - $CASE: $d"
    else
        FAIL=$((FAIL + 1))
        echo "not ok $N - $CASE: $d"
        echo "#   exit $RC; output:"
        sed 's/^/#     /' "$FAKE/out"
        echo "#   calls:"
        grep -v '^dpkg-query\|^apt-cache' "$FAKE/calls" 2>/dev/null | sed 's/^/#     /'
    fi
}

# new_state CASE_NAME UID: every package available (PostgreSQL at $PG_NEW), none installed.
new_state() {
    CASE=$1
    FAKE=$WORK/$N-$1
    mkdir -p "$FAKE/installed" "$FAKE/available" "$FAKE/config-files" "$FAKE/virtual" "$FAKE/held"
    : >"$FAKE/calls"
    echo "$2" >"$FAKE/uid"
    local p
    for p in "${ALL[@]}"; do
        case $p in postgresql-*) echo "$PG_NEW" >"$FAKE/available/$p" ;; *) echo 1.0 >"$FAKE/available/$p" ;; esac
    done
    touch "$FAKE/virtual/postgresql-contrib-15"
}
install_all_but_pg() { # everything except the server and its headers, which each case sets
    local p
    for p in "${ALL[@]}"; do
        case $p in postgresql-15 | postgresql-server-dev-15) ;; *) echo 1.0 >"$FAKE/installed/$p" ;; esac
    done
}
run_script() {
    FAKE=$FAKE PATH="$STUBS:$PATH" bash "$SCRIPT" </dev/null >"$FAKE/out" 2>&1
    RC=$?
}

exit_is() { [ "$RC" -eq "$1" ]; }
printed() { grep -qF -- "$1" "$FAKE/out"; }
# Every exit says why: the last line printed is the script's own.
says_why() { tail -n 1 "$FAKE/out" | grep -q '^install-deps: '; }
apt_installs() { grep -c '^apt-get install' "$FAKE/calls"; }
no_apt() { ! grep -q '^apt-get' "$FAKE/calls"; }
# apt-get install was called exactly once, with the server and its headers together.
one_install_with_both() {
    [ "$(apt_installs)" -eq 1 ] &&
        grep '^apt-get install' "$FAKE/calls" | grep -qw postgresql-15 &&
        grep '^apt-get install' "$FAKE/calls" | grep -qw postgresql-server-dev-15
}
installed() { [ "$(cat "$FAKE/installed/$1" 2>/dev/null)" = "$2" ]; }
both_installed_new() { installed postgresql-15 "$PG_NEW" && installed postgresql-server-dev-15 "$PG_NEW"; }
update_comes_first() { [ "$(grep '^apt-get' "$FAKE/calls" | head -n1 | cut -d' ' -f2)" = update ]; }
installs_too() { grep '^apt-get install' "$FAKE/calls" | grep -qw "$1"; }

as_root_installs() { # the checks of a case where root must end with everything installed
    check "exits 0" exit_is 0
    check "calls apt-get install once, with postgresql-15 and postgresql-server-dev-15" one_install_with_both
    check "server and headers installed at $PG_NEW" both_installed_new
    check "says it is done" printed "install-deps: done (postgresql-15 $PG_NEW, postgresql-server-dev-15 $PG_NEW)"
}

new_state nothing-installed-root 0
run_script
as_root_installs
check "names what is missing" printed "missing packages: postgresql-15 postgresql-server-dev-15"
check "calls apt-get update first" update_comes_first

new_state server-without-headers-root 0
install_all_but_pg
echo "$PG_OLD" >"$FAKE/installed/postgresql-15"
run_script
as_root_installs
check "names the missing headers" printed "missing packages: postgresql-server-dev-15"

new_state headers-removed-root 0   # apt-get remove leaves the package known to dpkg (config-files)
install_all_but_pg
echo "$PG_NEW" >"$FAKE/installed/postgresql-15"
echo "$PG_NEW" >"$FAKE/config-files/postgresql-server-dev-15"
run_script
as_root_installs

new_state headers-without-server-root 0
install_all_but_pg
echo "$PG_NEW" >"$FAKE/installed/postgresql-server-dev-15"
run_script
as_root_installs
check "names the missing server" printed "missing packages: postgresql-15"

new_state different-versions-root 0
install_all_but_pg
echo "$PG_OLD" >"$FAKE/installed/postgresql-15"
echo "$PG_NEW" >"$FAKE/installed/postgresql-server-dev-15"
run_script
as_root_installs
check "says the versions differ" printed "postgresql-15 ($PG_OLD) and postgresql-server-dev-15 ($PG_NEW) differ"

new_state everything-present-root 0
install_all_but_pg
echo "$PG_NEW" >"$FAKE/installed/postgresql-15"
echo "$PG_NEW" >"$FAKE/installed/postgresql-server-dev-15"
run_script
check "exits 0" exit_is 0
check "does not call apt-get" no_apt
check "says all is present" printed "install-deps: all packages present (postgresql-15 $PG_NEW)"

new_state server-without-headers-user 1000
install_all_but_pg
echo "$PG_NEW" >"$FAKE/installed/postgresql-15"
run_script
check "exits 1" exit_is 1
check "does not call apt-get" no_apt
check "names the missing headers" printed "missing packages: postgresql-server-dev-15"
check "gives the command to run" printed "apt-get install -y postgresql-15 postgresql-server-dev-15"
check "says why it did not install" printed "not root"

new_state nothing-installed-user 1000
run_script
check "exits 1" exit_is 1
check "does not call apt-get" no_apt
check "names every missing package" printed "missing packages: ${ALL[*]}"

new_state different-versions-user 1000
install_all_but_pg
echo "$PG_NEW" >"$FAKE/installed/postgresql-15"
echo "$PG_OLD" >"$FAKE/installed/postgresql-server-dev-15"
run_script
check "exits 1" exit_is 1
check "says the versions differ" printed "postgresql-15 ($PG_NEW) and postgresql-server-dev-15 ($PG_OLD) differ"
check "gives the command to run" printed "apt-get install -y postgresql-15 postgresql-server-dev-15"

new_state everything-present-user 1000
install_all_but_pg
echo "$PG_NEW" >"$FAKE/installed/postgresql-15"
echo "$PG_NEW" >"$FAKE/installed/postgresql-server-dev-15"
run_script
check "exits 0" exit_is 0
check "does not call apt-get" no_apt

new_state install-fails-root 0
touch "$FAKE/install_fails"
run_script
check "exits 1" exit_is 1
check "shows apt's error" printed "E: Sub-process /usr/bin/dpkg returned an error code (1)"
check "says the install failed" printed "install-deps: apt-get install failed"

new_state update-fails-root 0
touch "$FAKE/update_fails"
run_script
as_root_installs
check "says the update failed" printed "apt-get update failed"

new_state install-leaves-old-server-root 0   # a hold (or pin) keeps the old server
install_all_but_pg
echo "$PG_OLD" >"$FAKE/installed/postgresql-15"
touch "$FAKE/held/postgresql-15"
run_script
check "exits 1" exit_is 1
check "says the versions still differ" printed "postgresql-15 ($PG_OLD) and postgresql-server-dev-15 ($PG_NEW) differ"
check "says the install did not fix it" printed "still not right"

new_state contrib-is-a-real-package-root 0   # other releases: postgresql-contrib-15 is not virtual
rm -f "$FAKE/virtual/postgresql-contrib-15"
echo "$PG_NEW" >"$FAKE/available/postgresql-contrib-15"
run_script
as_root_installs
check "installs postgresql-contrib-15 too" installs_too postgresql-contrib-15

# Every case's output ends with a line of the script's own that says how it ended.
for d in "$WORK"/*-*/; do
    FAKE=${d%/}
    CASE=$(basename "$FAKE")
    CASE=${CASE#*-}
    RC="?"
    check "the last line says why it ended" says_why
done

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
