# Checkpoints (atomic, checksummed) and weights import (.pth, safetensors): cJSON for metadata,
# zlib for CRC32.
find_package(ZLIB REQUIRED)
vt_add_module(vt_io ${CMAKE_CURRENT_LIST_DIR} DEPS vt_engine PRIVATE_DEPS PkgConfig::VT_CJSON ZLIB::ZLIB)
