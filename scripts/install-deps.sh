#!/usr/bin/env bash
# Installs, from Debian/Ubuntu packages, whatever Grey's build, examples and tests need and the
# machine lacks. Safe to run again: it installs nothing that is already there.
set -euo pipefail

packages=(
    g++ cmake ninja-build pkg-config
    libasio-dev libfmt-dev doctest-dev libcli11-dev   # the library, its examples and unit tests
    libsqlite3-dev libtomlplusplus-dev                # the greylist server: its store and config file
    libhiredis-dev redis-server                       # the Redis store, and a Redis for its tests
    libssl-dev                                        # the greylist's privacy mode (SHA-256)
    python3 swaks postfix                             # test peers: smtplib, swaks, smtp-sink/-source
    clang libclang-rt-14-dev                          # the libFuzzer build
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing: ${missing[*]}"
# Postfix is wanted only for its smtp-sink and smtp-source tools: configure no mail system.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo -E apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
