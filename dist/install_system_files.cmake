# Run by `cmake --install` (and so by cpack), not at configure time: where the system files go
# depends on the prefix given then. With the prefix /usr (the .deb) they go where Debian looks
# for them, /etc/grey and /lib/systemd/system; with any other prefix, under it (PREFIX/etc/grey,
# PREFIX/lib/systemd/system), so an install into a private prefix touches nothing else. The
# units name the program and the configuration file by their installed paths.
#
# Set by the install(CODE) that includes this file: GREY_DIST_DIR (this folder),
# GREY_SAMPLE_CONFIG (the generated grey.toml), GREY_SBINDIR (relative to the prefix) and
# GREY_UNITS_SCRATCH (a folder of the build tree for the configured units).
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
    set(sysconfdir /etc)
    set(unitdir /lib/systemd/system)
else()
    set(sysconfdir "${prefix}/etc")
    set(unitdir "${prefix}/lib/systemd/system")
endif()
if(IS_ABSOLUTE "${GREY_SBINDIR}")
    set(GREY_SERVER "${GREY_SBINDIR}/greylist_server")
else()
    set(GREY_SERVER "${prefix}/${GREY_SBINDIR}/greylist_server")
endif()
set(GREY_CONFIG "${sysconfdir}/grey/grey.toml")

file(INSTALL DESTINATION "${sysconfdir}/grey" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${GREY_SAMPLE_CONFIG}")

# A scratch folder per destination: installs into two prefixes may run at once (ctest -j).
string(MD5 destination "$ENV{DESTDIR}${prefix}")
set(scratch "${GREY_UNITS_SCRATCH}/${destination}")
foreach(unit grey.service grey-policy.service)
    configure_file("${GREY_DIST_DIR}/systemd/${unit}.in" "${scratch}/${unit}" @ONLY)
    file(INSTALL DESTINATION "${unitdir}" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${scratch}/${unit}")
endforeach()
