# The Debian packages, built by `cpack` in a build tree (the dev build's will do: no second
# compile):
#
#   cmake --build build/release && (cd build/release && cpack)
#     → grey_<version>_<arch>.deb       greylist_server, greylist_admin, units, man pages,
#                                         /etc/grey/grey.toml (a conffile), the grey user
#     → libgrey-dev_<version>_all.deb   the headers and the CMake package (find_package(grey))
#
# Included from the top-level CMakeLists.txt after every install rule.
set(GREY_PACKAGE_MAINTAINER "Grey maintainers <grey@users.noreply.github.com>"
    CACHE STRING "Maintainer field of the Debian packages: Name <address>")
add_subdirectory(dist)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME grey)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${GREY_PACKAGE_MAINTAINER}")
# Each package's description below starts with its own synopsis line; CPackDeb would put the
# summary in front of it unless the summary is CPack's default one.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_NAME} built using CMake")
# Installed with prefix /usr under DESTDIR, so that dist/install_system_files.cmake sees the
# prefix a package has and puts the configuration in /etc and the units in /lib/systemd/system.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)  # the prefix with DESTDIR, whatever the build tree's own
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)  # a Debug build's binaries ship without their debug information
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME grey)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_SERVER_PACKAGE_SHLIBDEPS ON)  # libc6, libssl3, libsqlite3-0, libhiredis, libpcre2-8-0, ...
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser")  # postinst makes the grey user
set(CPACK_DEBIAN_SERVER_PACKAGE_SUGGESTS "postfix, redis-server")  # an MTA to front; a store to share
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/dist/debian/conffiles ${PROJECT_SOURCE_DIR}/dist/debian/postinst
    ${PROJECT_SOURCE_DIR}/dist/debian/prerm ${PROJECT_SOURCE_DIR}/dist/debian/postrm)
set(CPACK_DEBIAN_SERVER_DESCRIPTION
    "greylisting SMTP proxy and Postfix policy service
greylist_server greylists in front of a real mail server: a triplet (client
subnet, sender, recipient) seen for the first time is deferred with 451 4.7.1,
and a retry after the delay is relayed, losslessly, to the MTA behind it. With
--policy it is a Postfix policy service instead (check_policy_service), with
Postgrey's answers. The greylist is kept in SQLite or Redis.
.
This package has greylist_server, greylist_admin (list, search, whitelist,
remove, purge), the systemd units grey.service and grey-policy.service, and a
sample /etc/grey/grey.toml.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libgrey-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)  # headers only
set(dev_depends "libasio-dev (>= 1:1.22), libfmt-dev, libssl-dev (>= 3.0)")
if(GREY_HAVE_SQLITE)
    string(APPEND dev_depends ", libsqlite3-dev")  # greyConfig.cmake finds what the build had
endif()
if(GREY_HAVE_REDIS)
    string(APPEND dev_depends ", libhiredis-dev")
endif()
if(GREY_HAVE_PCRE2)
    string(APPEND dev_depends ", libpcre2-dev")
endif()
if(GREY_HAVE_DNS)
    string(APPEND dev_depends ", libunbound-dev")
endif()
if(GREY_HAVE_PSL)
    string(APPEND dev_depends ", libpsl-dev")
endif()
if(GREY_HAVE_REDIS OR GREY_HAVE_PCRE2 OR GREY_HAVE_DNS OR GREY_HAVE_PSL)
    string(APPEND dev_depends ", pkg-config")  # greyConfig.cmake finds them through it
endif()
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${dev_depends}")
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "header-only C++20 library for strict SMTP proxies
Grey is a header-only C++20 library for strict SMTP fronts: proxies that decide
which mail to take and relay what they take, transparently and without losing
it, to the real mail server behind them. It is built on standalone Asio
coroutines and fmt, with greylisting, SQLite and Redis stores, STARTTLS, the
PROXY protocol and a Postfix policy server.
.
This package has the headers and the CMake package: find_package(grey) and
grey::grey.")

include(CPack)
