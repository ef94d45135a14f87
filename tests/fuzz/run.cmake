# One fuzz_<target> CTest test: cmake -DFUZZER=... -DSECONDS=... -P run.cmake
#
# 1. Known inputs, each run once and whole: every file of REGRESSIONS
#    (tests/fuzz/regressions/<target>/) and of the seed folders (SEEDS, '|'-separated, read
#    in place: the fixtures and the real pages). Each must pass within KNOWN_LIMIT_MS
#    milliseconds, so a crash, leak or slow input found once stays fixed.
# 2. Fuzzing for SECONDS from the seeds and regressions, with inputs up to MAX_LEN bytes
#    (longer seeds are cut there) and the dictionary DICT; libFuzzer writes what it finds
#    new only to a fresh WORK/corpus.
# Any crash, sanitizer report, leak, hang (TIMEOUT seconds for one input) or OOM fails the
# test; libFuzzer saves the input under WORK/artifacts/.
foreach(var FUZZER SECONDS MAX_LEN TIMEOUT KNOWN_LIMIT_MS SEEDS REGRESSIONS WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()
get_filename_component(target "${FUZZER}" NAME)
set(limits -rss_limit_mb=2048 -malloc_limit_mb=2048)
string(REPLACE "|" ";" seed_dirs "${SEEDS}")

set(corpora "")
set(known "")
foreach(dir ${seed_dirs} "${REGRESSIONS}")
  if(IS_DIRECTORY "${dir}")
    list(APPEND corpora "${dir}")
    file(GLOB files LIST_DIRECTORIES false "${dir}/*")
    list(FILTER files EXCLUDE REGEX "/(README[^/]*|\\.[^/]*)$")
    list(APPEND known ${files})
  endif()
endforeach()

list(LENGTH known count)
if(count GREATER 0)   # with no file at all, libFuzzer would fuzz without end
  message(STATUS "${target}: ${count} known inputs, each run once")
  execute_process(COMMAND "${FUZZER}" -timeout=${TIMEOUT} ${limits} ${known}
                  OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE result)
  message("${out}")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${target}: a known input (seed or regression) fails (exit ${result}): "
                        "the last 'Running:' line above names it")
  endif()
  # libFuzzer's own -timeout counts whole seconds and checks every few; the times it
  # prints are exact.
  string(REGEX MATCHALL "Executed [^\n]* in [0-9]+ ms" runs "${out}")
  set(slow "")
  foreach(run ${runs})
    string(REGEX REPLACE "^Executed (.*) in ([0-9]+) ms$" "\\2" ms "${run}")
    string(REGEX REPLACE "^Executed (.*) in ([0-9]+) ms$" "\\1" file "${run}")
    if(ms GREATER KNOWN_LIMIT_MS)
      string(APPEND slow "\n  ${file}: ${ms} ms")
    endif()
  endforeach()
  if(slow)
    message(FATAL_ERROR "${target}: known inputs over ${KNOWN_LIMIT_MS} ms:${slow}")
  endif()
endif()

file(REMOVE_RECURSE "${WORK}/corpus")   # artifacts of earlier failures stay
file(MAKE_DIRECTORY "${WORK}/corpus" "${WORK}/artifacts")
set(dict_arg "")
if(DICT)
  set(dict_arg "-dict=${DICT}")
endif()
message(STATUS "${target}: fuzzing for ${SECONDS} s")
execute_process(COMMAND "${FUZZER}" -max_total_time=${SECONDS} -max_len=${MAX_LEN}
                        -timeout=${TIMEOUT} ${limits} ${dict_arg}
                        -artifact_prefix=${WORK}/artifacts/ -print_final_stats=1
                        "${WORK}/corpus" ${corpora}
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR
    "${target}: libFuzzer found a problem (exit ${result}); the input is in ${WORK}/artifacts/. "
    "Reproduce: ${FUZZER} <input>. Shrink a crash: ${FUZZER} -minimize_crash=1 "
    "-max_total_time=60 <input>. Keep the reproducer in ${REGRESSIONS}/.")
endif()
