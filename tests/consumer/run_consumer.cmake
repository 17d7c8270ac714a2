# Test driver for the consumer projects, run with cmake -P.
#
# Install step (the fixture of the find_package test): installs an already-built normnet tree
# into a fresh prefix.
#   cmake -DINSTALL_FROM=<normnet build dir> -DPREFIX=<dir> -DBUILD_TYPE=<cfg> -P run_consumer.cmake
#
# Consumer step: configures SOURCE_DIR into BINARY_DIR with the cache arguments given after `--`,
# builds it and runs the program `consumer`, which checks a value computed by normnet.
#   cmake -DSOURCE_DIR=<dir> -DBINARY_DIR=<dir> -P run_consumer.cmake -- -G Ninja -DCMAKE_...=...
cmake_minimum_required(VERSION 3.25)

function(run)
  string(REPLACE ";" " " shown "${ARGV}")
  message(STATUS "run: ${shown}")
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${shown}")
  endif()
endfunction()

if(DEFINED INSTALL_FROM)
  file(REMOVE_RECURSE "${PREFIX}")
  run(${CMAKE_COMMAND} --install "${INSTALL_FROM}" --prefix "${PREFIX}" --config "${BUILD_TYPE}")
  return()
endif()

set(configure_args)
set(after_separator FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(after_separator)
    list(APPEND configure_args "${CMAKE_ARGV${i}}")
  elseif("${CMAKE_ARGV${i}}" STREQUAL "--")
    set(after_separator TRUE)
  endif()
endforeach()

run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${BINARY_DIR}" ${configure_args})
run(${CMAKE_COMMAND} --build "${BINARY_DIR}")
run("${BINARY_DIR}/consumer")
