# Included from tests/CMakeLists.txt. The docs tests: docs/endpoints.md is what tools/gen_reference
# makes of data/ today, and every citation in the repository resolves inside it.
add_executable(docs_tests ${CMAKE_SOURCE_DIR}/tests/docs/reference_test.cpp ${CMAKE_SOURCE_DIR}/tests/docs/citations_test.cpp)
target_link_libraries(docs_tests PRIVATE kr_catch_main kr_reference)
target_compile_definitions(docs_tests PRIVATE KR_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
catch_discover_tests(docs_tests TEST_PREFIX "docs:" EXTRA_ARGS --warn NoTests PROPERTIES TIMEOUT 120)
