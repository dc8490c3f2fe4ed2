# Shared settings for vitcpp targets.
function(vit_enable_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
endfunction()

# Warnings plus the precompiled torch header, which keeps each translation unit from re-parsing
# <torch/torch.h> (~20 s per file on a 2-core machine).
function(vit_configure_target target)
  vit_enable_warnings(${target})
  if(VIT_PCH)
    target_precompile_headers(${target} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/torch_pch.h)
  endif()
endfunction()

# The test binaries keep the precompiled header and the unity batches even where VIT_PCH is OFF:
# that build (the sanitizer build) checks the includes of the code vitcpp ships, file by file, and
# the tests' files were a third of its compile time.
function(vit_configure_test_target target)
  vit_enable_warnings(${target})
  target_precompile_headers(${target} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/torch_pch.h)
  if(NOT VIT_PCH)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON)
  endif()
endfunction()
