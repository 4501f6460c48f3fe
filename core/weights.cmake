# Checkpoint and weights import: zlib for CRC32 (cJSON is linked by core/CMakeLists.txt).
find_package(ZLIB REQUIRED)
target_link_libraries(vt PUBLIC ZLIB::ZLIB)
