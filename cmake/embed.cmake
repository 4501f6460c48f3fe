# vt_embed(OUT_C VAR_NAME INPUT MODE): at build time, write OUT_C holding INPUT's bytes.
# MODE TEXT: `const char VAR_NAME[]` (NUL-terminated); MODE WORDS: `const uint32_t VAR_NAME[]` plus
# `const size_t VAR_NAME_size` in bytes (for SPIR-V). Runs cmake -P, so no Python is needed.
# The generated file is an OUTPUT of a custom command in the calling folder: a target defined in
# another folder (such as `vt`, defined at the top level) only runs the command if the folder also adds
# a custom target depending on the outputs and `add_dependencies(vt <that target>)`.
set(VT_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_file.cmake)
function(vt_embed out_c var input mode)
  add_custom_command(
    OUTPUT ${out_c}
    COMMAND ${CMAKE_COMMAND} -DIN=${input} -DOUT=${out_c} -DVAR=${var} -DMODE=${mode} -P ${VT_EMBED_SCRIPT}
    DEPENDS ${input} ${VT_EMBED_SCRIPT}
    COMMENT "Embedding ${var}"
    VERBATIM)
endfunction()
