# Test driver: `normnet train --epochs 2`, and the same run resumed from its own epoch-1 checkpoint
# (as if it had been interrupted after epoch 1), must write byte-identical models (weights, optimizer
# state with the cosine schedule planned for 2 epochs, metadata).
#   cmake -DNORMNET=<normnet> -DDIR=<scratch dir> -P resume_check.cmake
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})
set(common --limit 256 --test-limit 100 --batch-size 128 --seed 3 --threads 1)
function(train)
  execute_process(COMMAND ${NORMNET} train ${common} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "normnet train ${ARGN} failed (exit code ${rc}):\n${err}")
  endif()
  message("normnet train ${ARGN}:\n${out}")
endfunction()
train(--epochs 2 -o ${DIR}/uninterrupted.safetensors)
train(--epochs 2 --resume ${DIR}/uninterrupted.epoch1.safetensors -o ${DIR}/resumed.safetensors --no-checkpoint)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${DIR}/uninterrupted.safetensors ${DIR}/resumed.safetensors
                RESULT_VARIABLE differ)
if(differ)
  message(FATAL_ERROR "the resumed run's model differs from the uninterrupted run's")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${DIR}/uninterrupted.epoch1.safetensors ${DIR}/resumed.safetensors
                RESULT_VARIABLE differ)
if(NOT differ)
  message(FATAL_ERROR "epoch 2 changed nothing: the comparison would prove nothing")
endif()
message("resumed and uninterrupted runs wrote identical models")
