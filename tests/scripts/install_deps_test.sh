#!/usr/bin/env bash
# Regression test for scripts/install-deps.sh, run against stand-ins for dpkg-query, apt-get,
# debconf-set-selections, id and sudo that only log how they were called. It checks that as
# root the script calls apt-get itself (it once ran "$sudo -E apt-get" with an empty $sudo,
# i.e. a command named "-E"), that otherwise each call goes through sudo, that apt-get install
# gets DEBIAN_FRONTEND=noninteractive, that nothing is installed when nothing is missing, and
# that packages named as arguments are installed too, once when the list has them already.
#
#   tests/scripts/install_deps_test.sh [SCRIPT]     SCRIPT defaults to scripts/install-deps.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
script=$(realpath "${1:-$root/scripts/install-deps.sh}")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
log=$tmp/log

# One stand-in, linked under each name it plays: it appends its command line to $STANDIN_LOG
# (apt-get's with the DEBIAN_FRONTEND it was given in front), then acts its part.
cat >"$tmp/bin/standin" <<'END'
#!/usr/bin/env bash
name=${0##*/} frontend=""
[ "$name" != apt-get ] || [ -z "${DEBIAN_FRONTEND:-}" ] || frontend="DEBIAN_FRONTEND=$DEBIAN_FRONTEND "
echo "$frontend$name${*:+ $*}" >>"$STANDIN_LOG"
case $name in
dpkg-query)  # installed unless named in $STANDIN_MISSING; the package is the last argument
    case " $STANDIN_MISSING " in *" ${!#} "*) exit 1 ;; esac
    echo "install ok installed" ;;
debconf-set-selections) cat >/dev/null ;;
id) [ "$1" = -u ] && echo "$STANDIN_UID" ;;
sudo)  # like the real one, it drops DEBIAN_FRONTEND unless given -E
    if [ "$1" = -E ]; then shift; else unset DEBIAN_FRONTEND; fi
    exec "$@" ;;
esac
END
chmod +x "$tmp/bin/standin"
for name in dpkg-query apt-get debconf-set-selections id sudo; do ln -s standin "$tmp/bin/$name"; done

# Runs the script as uid $1 with the packages $2 missing and the arguments that follow;
# sets $status and $output.
run() {
    local uid=$1 missing=$2
    shift 2
    : >"$log"
    status=0
    output=$(env -u DEBIAN_FRONTEND PATH="$tmp/bin:$PATH" STANDIN_LOG="$log" STANDIN_UID="$uid" \
        STANDIN_MISSING="$missing" bash "$script" "$@" 2>&1) || status=$?
}

# Assertions: on failure each sets $why and returns 1.
exits() { [ "$status" -eq "$1" ] || { why="exit status $status, expected $1: $(tail -n1 <<<"$output")"; return 1; }; }
has() { grep -qxF -- "$1" "$log" || { why="no call \"$1\""; return 1; }; }
no_call() { ! grep -q -- "^$1" "$log" || { why="unexpected call: $(grep -m1 -- "^$1" "$log")"; return 1; }; }
via_sudo() {  # the call $1 comes right after a call of sudo
    has "$1" || return 1
    awk -v want="$1" '$0 == want { ok = prev ~ /^sudo /; exit } { prev = $0 } END { exit !ok }' "$log" ||
        { why="\"$1\" not called through sudo"; return 1; }
}

install="apt-get install -y -qq --no-install-recommends"
case_root() {
    run 0 "cmake swaks" && exits 0 && has debconf-set-selections && has "apt-get update -qq" &&
        has "DEBIAN_FRONTEND=noninteractive $install cmake swaks" && no_call sudo
}
case_user() {
    run 1000 "cmake swaks" && exits 0 && via_sudo debconf-set-selections &&
        via_sudo "apt-get update -qq" && via_sudo "DEBIAN_FRONTEND=noninteractive $install cmake swaks"
}
case_nothing_missing() {
    run 1000 "" && exits 0 && no_call apt-get && no_call sudo
}
case_arguments() {
    run 1000 "eatmydata" eatmydata python3-aiosmtpd && exits 0 &&
        has "DEBIAN_FRONTEND=noninteractive $install eatmydata"
}
case_named_twice() {  # postgrey is in the list, and tests/perf/run names it too
    run 1000 "postgrey eatmydata" postgrey eatmydata && exits 0 &&
        has "DEBIAN_FRONTEND=noninteractive $install postgrey eatmydata"
}

passed=0 failed=0
check() {  # FUNCTION DESCRIPTION
    why=""
    if "$1"; then
        echo "PASS $2"
        passed=$((passed + 1))
    else
        echo "FAIL $2: $why"
        failed=$((failed + 1))
    fi
}
echo "testing $script"
check case_root "(a) as root, packages missing: apt-get called without sudo"
check case_user "(b) as a user, packages missing: each call through sudo"
check case_nothing_missing "(c) nothing missing: no apt-get at all"
check case_arguments "(d) packages named as arguments are installed when missing"
check case_named_twice "(e) a package both listed and named as an argument is installed once"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
