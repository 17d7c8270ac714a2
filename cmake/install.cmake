# Installs the library, its public headers and a CMake package so that consumers can call
# find_package(normnet) and link normnet::normnet.
include(CMakePackageConfigHelpers)
install(TARGETS normnet EXPORT normnetTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/normnet DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT normnetTargets NAMESPACE normnet:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/normnet)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/normnetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/normnetConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/normnet)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/normnetConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/normnetConfig.cmake ${PROJECT_BINARY_DIR}/normnetConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/normnet)
