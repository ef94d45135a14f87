# Installs the config and the systemd units, deciding where from the prefix of this install
# (--prefix, or the configured one): the config in PREFIX/etc/moviesd, or /etc/moviesd for
# the prefix /usr (the FHS's place, as distributions install it); the units in
# PREFIX/lib/systemd/system, where systemd looks for /usr and /usr/local alike, naming the
# installed binary and config. Included from the install script; file(INSTALL) adds DESTDIR.
# In: MOVIESD_SOURCE_DIR, MOVIESD_BINARY_DIR, MOVIESD_BINDIR and MOVIESD_SYSCONFDIR (relative).
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(confdir "/etc/moviesd")
else()
  set(confdir "${CMAKE_INSTALL_PREFIX}/${MOVIESD_SYSCONFDIR}/moviesd")
endif()
file(INSTALL "${MOVIESD_SOURCE_DIR}/config/moviesd.conf" DESTINATION "${confdir}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

set(MOVIESD_EXEC "${CMAKE_INSTALL_PREFIX}/${MOVIESD_BINDIR}/moviesd")
set(MOVIESD_CONFIG "${confdir}/moviesd.conf")
set(rendered "${MOVIESD_BINARY_DIR}/moviesd.service")
configure_file("${MOVIESD_SOURCE_DIR}/systemd/moviesd.service.in" "${rendered}" @ONLY)
file(INSTALL "${rendered}" "${MOVIESD_SOURCE_DIR}/systemd/moviesd.socket"
     DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
