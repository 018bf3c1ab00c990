# The Python package python/fep, installed by `cmake --install` where Debian's
# python3 finds it: PREFIX/lib/python3/dist-packages for PREFIX /usr (Debian's
# own layout), else PREFIX/lib/python3.X/dist-packages (on sys.path for
# /usr/local).  The install also records where libfep went
# (fep/_install_paths.py), so the installed package finds the installed library.
if(NOT FEP_PYTHON_INSTALL_DIR)
  set(_fep_py_version "")
  if(FEP_PYTHON3_NUMPY)
    execute_process(COMMAND ${FEP_PYTHON3_NUMPY} -c "import sys; print('%d.%d' % sys.version_info[:2])"
                    OUTPUT_VARIABLE _fep_py_version OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" OR NOT _fep_py_version)
    set(_fep_py_dir lib/python3/dist-packages)
  else()
    set(_fep_py_dir lib/python${_fep_py_version}/dist-packages)
  endif()
  set(FEP_PYTHON_INSTALL_DIR ${_fep_py_dir} CACHE STRING "where cmake --install puts the fep package (relative to the prefix)")
endif()
install(DIRECTORY ${CMAKE_SOURCE_DIR}/python/fep DESTINATION ${FEP_PYTHON_INSTALL_DIR}
        FILES_MATCHING PATTERN "*.py" PATTERN "_install_paths.py" EXCLUDE PATTERN "__pycache__" EXCLUDE)
install(CODE "file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${FEP_PYTHON_INSTALL_DIR}/fep/_install_paths.py\"
  \"# Written by cmake --install: where libfep was installed.\\nLIBRARY = '\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/libfep.so.0'\\n\")")
