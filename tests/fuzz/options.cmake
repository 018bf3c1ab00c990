# tests/fuzz/options.cmake — the FEP_FUZZ option (libFuzzer targets, clang only).
# Included from the root CMakeLists.txt right after the FEP_SANITIZE block, before
# any library is defined, so that with FEP_FUZZ=ON every project library is built
# with coverage instrumentation (-fsanitize=fuzzer-no-link) plus ASan and UBSan.
# The targets themselves are in tests/fuzz/CMakeLists.txt (added at the end of the
# root file); scripts/fuzz builds and runs them.  With FEP_FUZZ=OFF (the default)
# this file changes nothing.
option(FEP_FUZZ "Build the libFuzzer targets fuzz_* (needs clang; see scripts/fuzz)" OFF)
if(FEP_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FEP_FUZZ=ON needs clang (libFuzzer): configure with CC=clang")
  endif()
  if(FEP_SANITIZE)
    message(FATAL_ERROR "FEP_FUZZ=ON already builds with ASan and UBSan; leave FEP_SANITIZE off")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  # Executables other than the fuzz targets (fepc, tests) still link: they get
  # the sanitizer runtimes, which also hold the coverage callbacks.
  add_link_options(-fsanitize=address,undefined)
endif()
