# Included from tests/CMakeLists.txt. Registers the fake fal server's own test and the
# conformance test that runs the official @fal-ai/client (npm) against it.
find_program(KR_NODE_EXECUTABLE node)
if(NOT KR_NODE_EXECUTABLE)
  message(STATUS "node not found: fakefal_selftest and conformance_fal_client are not registered")
  return()
endif()

add_test(NAME fakefal_selftest
  COMMAND ${KR_NODE_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/fakefal/selftest.mjs)
set_tests_properties(fakefal_selftest PROPERTIES TIMEOUT 120 LABELS "fakefal")

find_program(KR_BASH_EXECUTABLE bash)
add_test(NAME conformance_fal_client
  COMMAND ${KR_BASH_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/conformance/run.sh)
# No skip code: run.sh fails when npm cannot install the pinned client (the registry is part
# of CI's environment, so a conformance run that did not happen is a failure).
# RESOURCE_LOCK: the >90 MiB multipart upload makes it memory-hungry; keep it off the other
# node test's back when ctest runs in parallel.
set_tests_properties(conformance_fal_client PROPERTIES
  TIMEOUT 600 LABELS "fakefal;conformance" RESOURCE_LOCK fakefal_node)
set_tests_properties(fakefal_selftest PROPERTIES RESOURCE_LOCK fakefal_node)
