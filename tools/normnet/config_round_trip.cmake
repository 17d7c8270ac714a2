# Test driver: `normnet summary --json` written to a file and read back by `normnet summary
# --config` must print the same table as `normnet summary`.
#   cmake -DNORMNET=<normnet> -DDIR=<scratch dir> -P config_round_trip.cmake
file(MAKE_DIRECTORY ${DIR})
execute_process(COMMAND ${NORMNET} summary --json OUTPUT_FILE ${DIR}/fashion_cnn.json RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "normnet summary --json failed (exit code ${rc})")
endif()
execute_process(COMMAND ${NORMNET} summary OUTPUT_VARIABLE expected RESULT_VARIABLE rc1)
execute_process(COMMAND ${NORMNET} summary --config ${DIR}/fashion_cnn.json OUTPUT_VARIABLE actual ERROR_VARIABLE err
                RESULT_VARIABLE rc2)
if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0)
  message(FATAL_ERROR "normnet summary failed (exit codes ${rc1}, ${rc2}): ${err}")
endif()
if(NOT expected STREQUAL actual OR NOT actual MATCHES "Total params: 1,199,883")
  message(FATAL_ERROR "summary from --config differs:\n${actual}\nexpected:\n${expected}")
endif()
message("summary --config reproduces the default model's table")
