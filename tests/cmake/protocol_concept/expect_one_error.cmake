# Builds TARGET in BUILD_DIR: the build must fail with exactly one error, and that error must
# contain EXPECTED. Run by ctest as `cmake -D... -P expect_one_error.cmake`.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE status)
if(status EQUAL 0)
    message(FATAL_ERROR "${TARGET} compiled, and must not:\n${out}")
endif()
string(REGEX MATCHALL "error: [^\n]*" errors "${out}")
list(LENGTH errors count)
if(NOT count EQUAL 1)
    message(FATAL_ERROR "${TARGET}: ${count} errors, where one line should say what is wrong:\n${out}")
endif()
string(FIND "${errors}" "${EXPECTED}" at)
if(at EQUAL -1)
    message(FATAL_ERROR "${TARGET}: the error does not say \"${EXPECTED}\":\n${errors}")
endif()
message(STATUS "${TARGET}: ${errors}")
