#!/usr/bin/env bash
# Installs, from Debian/Ubuntu packages, whatever Grey's build, examples and tests need and the
# machine lacks, plus any packages named as arguments (the benchmark adds its peers). Safe to
# run again: it installs nothing that is already there. As root (CI, containers) it calls
# apt-get itself; otherwise through sudo.
set -euo pipefail

packages=(
    g++ cmake ninja-build pkg-config
    libasio-dev libfmt-dev doctest-dev libcli11-dev   # the library, its examples and unit tests
    libsqlite3-dev libtomlplusplus-dev                # the greylist server: its store and config file
    libpcre2-dev postgrey                             # Postgrey's whitelist files: their regexes; Debian's files for the tests
    libhiredis-dev redis-server                       # the Redis store, and a Redis for its tests
    redis-sentinel redis-tools                        # Sentinel sets and clusters for its tests (redis-cli --cluster)
    libssl-dev openssl                                # STARTTLS, the privacy mode; test certificates
    libunbound-dev libevent-dev unbound libpsl-dev    # the DNS resolver (grey::dns; libunbound.pc names libevent), an unbound for its tests; the public suffix list (grey::psl)
    python3 swaks libnet-ssleay-perl postfix          # test peers: smtplib, swaks (with TLS), smtp-sink/-source
    python3-aiosmtpd                                  # an upstream that speaks STARTTLS
    haproxy                                           # a load balancer sending the PROXY protocol
    prometheus                                        # promtool checks the metrics endpoint
    shellcheck                                        # tests/run checks the shell scripts
    doxygen                                           # the API reference (grey_docs, ctest's docs.reference)
    systemd lintian dpkg-dev                          # tests/dist: systemd-analyze on the units; the .deb (shlibdeps, lintian)
    clang libclang-rt-14-dev                          # the libFuzzer build
    "$@"
)

missing=()
for p in "${packages[@]}"; do
    # A package named twice (an argument that the list has too) is installed once.
    [[ " ${missing[*]} " == *" $p "* ]] && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

# An array, not a string: as root it is empty and expands to nothing at all.
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
echo "Installing: ${missing[*]}"
# Postfix is wanted only for its smtp-sink and smtp-source tools: configure no mail system.
echo "postfix postfix/main_mailer_type select No configuration" | "${as_root[@]}" debconf-set-selections
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
