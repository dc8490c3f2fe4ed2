# Run at build time (cmake -P): writes OUTPUT from TEMPLATE with the project version and
# `git describe` of SOURCE_DIR, touching OUTPUT only when the text changes, so an unchanged
# checkout recompiles nothing. Outside a git checkout (a source tarball, a Docker build context
# without .git) the description is empty.
find_package(Git QUIET)
set(VIT_GIT_DESCRIBE "")
if(GIT_FOUND AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${SOURCE_DIR}" describe --always --dirty --tags
                  OUTPUT_VARIABLE VIT_GIT_DESCRIBE OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
configure_file("${TEMPLATE}" "${OUTPUT}" @ONLY)
