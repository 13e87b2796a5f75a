# Lua tests, included by tests/CMakeLists.txt: each tests/lua/test_*.lua runs under the real
# klingrun binary (offline backend, so nothing leaves the machine) and must print
# "N passed, 0 failed".
file(GLOB KR_LUA_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/lua/test_*.lua)
foreach(file ${KR_LUA_TESTS})
  get_filename_component(name ${file} NAME_WE)
  add_test(NAME lua:${name}
           COMMAND $<TARGET_FILE:klingrun> --offline --out ${CMAKE_BINARY_DIR}/test-out/lua ${file}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(lua:${name} PROPERTIES PASS_REGULAR_EXPRESSION "[1-9][0-9]* passed, 0 failed" TIMEOUT 120)
endforeach()
