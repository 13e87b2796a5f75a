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

# The same module loaded by plain LuaJIT (`require "kling"` from any host).
find_program(KR_LUAJIT luajit)
if(KR_LUAJIT)
  add_test(NAME lua:module_in_plain_luajit
           COMMAND ${CMAKE_COMMAND} -E env --unset=FAL_KEY --unset=FAL_KEY_ID --unset=FAL_KEY_SECRET
                   KLINGRUN_OUT=${CMAKE_BINARY_DIR}/test-out/module KLINGRUN_LUA_PATH=${CMAKE_SOURCE_DIR}/lua-lib
                   ${KR_LUAJIT} -e "package.cpath='$<TARGET_FILE_DIR:kling_module>/?.so;'..package.cpath"
                   ${CMAKE_SOURCE_DIR}/tests/lua/module/host.lua)
  set_tests_properties(lua:module_in_plain_luajit PROPERTIES PASS_REGULAR_EXPRESSION "1 passed, 0 failed" TIMEOUT 60)
endif()
