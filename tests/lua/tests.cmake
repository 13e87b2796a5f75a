# Lua helper tests (lua-lib/kling/*), included by tests/CMakeLists.txt.
# These run with plain luajit and the pure-Lua stub module (tests/lua/stub_kling.lua), so they
# need neither the C++ build nor the network. The same files also run under
# `klingrun tests/lua/test_x.lua`, with the real module.
find_program(KR_LUAJIT_EXE luajit)
if(KR_LUAJIT_EXE)
  foreach(name storyboard dialogue camera)
    add_test(NAME lua-stub:${name}
             COMMAND ${KR_LUAJIT_EXE} ${CMAKE_SOURCE_DIR}/tests/lua/test_${name}.lua
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(lua-stub:${name} PROPERTIES PASS_REGULAR_EXPRESSION " passed, 0 failed")
  endforeach()
  foreach(example t2v_single multi_shot i2v_elements procedural storyboard_60s budgeted parallel_spawn)
    add_test(NAME lua-stub:example:${example}
             COMMAND ${KR_LUAJIT_EXE} ${CMAKE_SOURCE_DIR}/tests/lua/run_with_stub.lua
                     ${CMAKE_SOURCE_DIR}/scripts/examples/${example}.lua
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  endforeach()
endif()
