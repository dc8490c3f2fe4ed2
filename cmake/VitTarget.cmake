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
