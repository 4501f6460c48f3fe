# External libraries of the data part: libarchive (.tar.gz), libpng and libjpeg(-turbo) (image
# folders), libcurl (vtrain download). Included from core/CMakeLists.txt.
pkg_check_modules(VT_ARCHIVE REQUIRED IMPORTED_TARGET libarchive)
pkg_check_modules(VT_PNG REQUIRED IMPORTED_TARGET libpng)
pkg_check_modules(VT_JPEG REQUIRED IMPORTED_TARGET libjpeg)
pkg_check_modules(VT_CURL REQUIRED IMPORTED_TARGET libcurl)
target_link_libraries(vt PUBLIC PkgConfig::VT_ARCHIVE PkgConfig::VT_PNG PkgConfig::VT_JPEG PkgConfig::VT_CURL)
